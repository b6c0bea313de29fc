"""deploy/contacts.yaml: who is told about a district's drug alerts, refused when inconsistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shared.city import load_city
from shared.contacts import ContactsSettings, load_contacts
from shared.settings import CitySettings

CITY = load_city(CitySettings().file)
OUTREACH: dict[str, Any] = {"id": "out", "name": "O", "districts": "all", "email": "o@x.dk"}


def load(tmp_path: Path, *recipients: dict[str, Any]) -> Any:
    path = tmp_path / "contacts.yaml"
    path.write_text(yaml.safe_dump({"recipients": list(recipients)}))
    return load_contacts(path, CITY)


def test_the_committed_contacts_reach_every_district() -> None:
    contacts = load_contacts(ContactsSettings().file, CITY)
    for d in CITY.districts:
        ids = {r.id for r in contacts.for_district(d.id, CITY)}
        assert {"outreach-oncall", "ops-oncall"} <= ids
        rooms = {f.id for f in CITY.facilities if f.district == d.id}
        assert {r.facility for r in contacts.for_district(d.id, CITY) if r.facility} == rooms
    assert [r.id for r in contacts.platform()] == ["ops-oncall"]


def test_a_room_hears_only_its_own_district(tmp_path: Path) -> None:
    room = {"id": "h", "name": "H", "facility": "halmtorv", "email": "h@x.dk"}
    contacts = load(tmp_path, room, OUTREACH)
    assert [r.id for r in contacts.for_district("vesterbro", CITY)] == ["h", "out"]
    assert [r.id for r in contacts.for_district("amager", CITY)] == ["out"]


@pytest.mark.parametrize(
    ("recipients", "message"),
    [
        ([{"id": "x", "name": "X", "districts": "all"}], "give an email, a webhook or both"),
        ([{"id": "x", "name": "X", "email": "x@x.dk"}], "give a facility, districts or platform"),
        ([{**OUTREACH, "facility": "atlantis"}], "unknown facility atlantis"),
        ([{**OUTREACH, "districts": ["atlantis"]}], "unknown district atlantis"),
        ([OUTREACH, OUTREACH], "duplicate recipient id"),
        ([{**OUTREACH, "districts": ["vesterbro"]}], "no recipient for district"),
        ([{**OUTREACH, "email": "not-an-address"}], "email"),
    ],
)
def test_inconsistent_contacts_are_refused(
    tmp_path: Path, recipients: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises((ValueError, ValidationError), match=message):
        load(tmp_path, *recipients)
