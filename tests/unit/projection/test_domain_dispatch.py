"""The projection dispatches on the CloudEvents type string and reads each payload through its
type's view (shared/events/views.py), whichever representation the event has: the hot path's
msgspec Struct or the contract's pydantic model. Every field a rule reads must be a field of
the type's model and of its Struct (mypy checks the models statically; this checks the pairing
of type string and rule, which mypy cannot see), and both representations project alike."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.projection import domain, rooms
from shared.events import views
from shared.events.catalogue import CATALOGUE
from shared.events.fast_decode import STRUCTS, event_of
from tests.unit.projection import factory as f


def _members(view: type[Any]) -> set[str]:
    """The fields a view names (its properties, inherited ones too)."""
    return {
        name
        for klass in view.__mro__
        for name, member in vars(klass).items()
        if isinstance(member, property)
    }


def _view_of(rule: Any, parameter: str) -> type[Any]:
    hints = typing.get_type_hints(rule, vars(domain) | vars(rooms))
    view: type[Any] = hints[parameter]
    return view


_DOMAIN = sorted(domain._RULES.items())
_ROOMS = sorted(rooms._RULES.items())


@pytest.mark.parametrize(("event_type", "rule"), _DOMAIN, ids=[t for t, _ in _DOMAIN])
def test_every_domain_rule_reads_fields_its_type_has(event_type: str, rule: Any) -> None:
    members = _members(_view_of(rule, "data"))
    assert members, event_type
    assert members <= set(CATALOGUE[event_type].model.model_fields)
    assert members <= set(STRUCTS[event_type].__struct_fields__)


@pytest.mark.parametrize(("event_type", "rule"), _ROOMS, ids=[t for t, _ in _ROOMS])
def test_every_room_rule_reads_fields_its_type_has(event_type: str, rule: Any) -> None:
    members = _members(_view_of(rule, "data"))
    assert members <= set(CATALOGUE[event_type].model.model_fields)
    assert members <= set(STRUCTS[event_type].__struct_fields__)


def test_every_type_but_the_void_has_a_rule_and_district_level_types_name_a_district() -> None:
    assert set(domain._RULES) == set(CATALOGUE) - {views.REPORT_VOIDED}
    for event_type in views.DISTRICT_LEVEL:
        assert "district" in CATALOGUE[event_type].model.model_fields
        assert "district" in STRUCTS[event_type].__struct_fields__


def test_the_view_names_are_the_catalogue_s_type_strings() -> None:
    named = {
        value for name, value in vars(views).items() if name.isupper() and isinstance(value, str)
    }
    assert named == set(CATALOGUE)


def test_an_event_of_either_representation_projects_alike() -> None:
    base = datetime(2026, 11, 27, 10, tzinfo=UTC)
    stream = f.random_stream(seed=11, n=600, base=base)
    stream += [
        f.wrap(f.p.StreetNeedlesCollected(district="vesterbro", area="x", count=3), base, None,
               "vesterbro"),
    ]  # fmt: skip
    fast = [event_of(e) for e in stream]
    assert len({e.type for e in stream}) >= 10
    assert domain.project(fast, f.CITY) == domain.project(stream, f.CITY)
    zone = f.CITY.zone
    assert rooms.room_retraction(fast, zone) == rooms.room_retraction(stream, zone)
    assert domain.retraction(fast, f.CITY) == domain.retraction(stream, f.CITY)
    assert all(domain.check_references(e, f.CITY) is None for e in fast)
    assert [domain.district_of(e, f.CITY) for e in fast] == [
        domain.district_of(e, f.CITY) for e in stream
    ]
    later = base + timedelta(hours=1)
    assert not domain.same_event(fast[0], event_of(f.refused(later)))
