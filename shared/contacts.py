"""Who is told about what: ``deploy/contacts.yaml`` (see :class:`ContactsSettings`).

Invariants (checked at load against the city): recipient ids are unique, every facility and
district named exists, every recipient has at least one channel (e-mail or webhook) and a scope
(a facility, districts or ``all``), and every district has at least one recipient (a drug alert
nobody would receive is refused at start, not discovered during an overdose cluster).
:meth:`Contacts.for_district` is the one definition of "the district's recipients" used by the
notifier and by the Alertmanager configuration generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.city import City
from shared.settings import REPO_ROOT

Id = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$", max_length=254)]
Url = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000)]


class ContactsSettings(BaseSettings):
    """``DCR_CONTACTS_*``: where the recipients are configured."""

    model_config = SettingsConfigDict(env_prefix="DCR_CONTACTS_")

    file: Path = REPO_ROOT / "deploy" / "contacts.yaml"


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Id
    name: str
    facility: Id | None = None
    districts: Literal["all"] | tuple[Id, ...] = ()
    #: Also receives platform alerts (Alertmanager's ops route).
    platform: bool = False
    email: Email | None = None
    webhook: Url | None = None

    @model_validator(mode="after")
    def _has_channel_and_scope(self) -> Recipient:
        if self.email is None and self.webhook is None:
            raise ValueError(f"recipient {self.id}: give an email, a webhook or both")
        if self.facility is None and not self.districts and not self.platform:
            raise ValueError(f"recipient {self.id}: give a facility, districts or platform")
        return self

    def covers(self, district: str, city: City) -> bool:
        if self.districts == "all" or district in self.districts:
            return True
        return self.facility is not None and city.district_of(self.facility) == district


class Contacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    recipients: tuple[Recipient, ...]

    def check_against(self, city: City) -> Contacts:
        ids = [r.id for r in self.recipients]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate recipient id(s): {dupes}")
        for r in self.recipients:
            if r.facility is not None and r.facility not in city.facility_by_id:
                raise ValueError(f"recipient {r.id} names unknown facility {r.facility}")
            for d in () if r.districts == "all" else r.districts:
                if d not in city.district_by_id:
                    raise ValueError(f"recipient {r.id} names unknown district {d}")
        unreached = [d.id for d in city.districts if not self.for_district(d.id, city)]
        if unreached:
            raise ValueError(f"no recipient for district(s) {unreached}")
        return self

    def for_district(self, district: str, city: City) -> tuple[Recipient, ...]:
        """Everyone told about a drug alert in ``district``, in file order."""
        return tuple(r for r in self.recipients if r.covers(district, city))

    def platform(self) -> tuple[Recipient, ...]:
        return tuple(r for r in self.recipients if r.platform)


def load_contacts(path: Path, city: City) -> Contacts:
    with path.open(encoding="utf-8") as fh:
        return Contacts.model_validate(yaml.safe_load(fh)).check_against(city)
