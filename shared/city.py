"""The city model: districts and facilities from ``deploy/city.yaml`` (see CitySettings).

Invariants (checked at load): ids are unique, every facility's district exists, the time zone is
a valid IANA zone. Days in read models are calendar days in :attr:`City.timezone`.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from datetime import date, datetime, time
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Id = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The day's minutes as "HH:MM", in order (also their texts' sorted order).
_MINUTE_TEXTS: tuple[str, ...] = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(1440))


class PseudonymScope(StrEnum):
    """Where one client code identifies one person (``pseudonym_scope`` in city.yaml).

    ``facility``: codes are issued per room; distinct pseudonyms in a district or the city are
    distinct (facility, code) pairs, not distinct people. ``city``: one code is one person
    city-wide (only where the rooms share one code register and it is lawful to link visits
    across rooms); district and city unique-client figures are then distinct people.
    Changing the scope changes every pseudonym: treat it as a key rotation (new key id).
    """

    FACILITY = "facility"
    CITY = "city"


class FacilityStatus(StrEnum):
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    PLANNED = "planned"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class District(_Frozen):
    id: Id
    name: str


class Facility(_Frozen):
    id: Id
    name: str
    district: Id
    address: str
    booths: Annotated[int, Field(ge=1, le=200)]
    status: FacilityStatus
    #: weekday -> (open, close) in local "HH:MM"; "24:00" means midnight at the end of the day.
    opening_hours: dict[Weekday, tuple[str, str]] = {}
    #: First local day the room was open (reports mark it; before/after comparisons use it).
    #: A planned room has none.
    opened: date | None = None
    #: The day a planned room is expected to open (informational).
    planned_opening: date | None = None

    @model_validator(mode="after")
    def _dates_match_status(self) -> Facility:
        if self.status is FacilityStatus.PLANNED and self.opened is not None:
            raise ValueError(
                f"{self.id}: a planned room has no 'opened' date (use planned_opening)"
            )
        return self

    @field_validator("opening_hours")
    @classmethod
    def _valid_times(cls, v: dict[Weekday, tuple[str, str]]) -> dict[Weekday, tuple[str, str]]:
        for day, (start, end) in v.items():
            for t in (start, end):
                if t != "24:00":
                    try:
                        time.fromisoformat(t)
                    except ValueError:
                        raise ValueError(f"{day}: {t!r} is not HH:MM") from None
        return v

    def is_open(self, at_local: datetime) -> bool:
        """Whether the facility is open at a local (city time zone) datetime (to the minute:
        its seconds do not matter). Read from :attr:`_open_minutes` (one index per call: the
        projection asks it for every visit start); :meth:`_is_open_at` states the rule."""
        return self._open_minutes[at_local.weekday()][at_local.hour * 60 + at_local.minute] == 1

    @cached_property
    def _open_minutes(self) -> tuple[bytes, ...]:
        """For each weekday (Monday first), 1440 flags: whether :meth:`_is_open_at` that
        minute. Every comparison of the rule is of the minute's "HH:MM" with a configured
        time, so its answer can only change where the minutes' sorted texts pass one of the
        day's and the day before's configured times: the rule is evaluated once per piece
        between those places, not once per minute (50 rooms' tables took 0.5 s so)."""
        days: list[bytes] = []
        for weekday in range(7):
            cuts = {0, 1440}
            for day in (_WEEKDAYS[weekday], _WEEKDAYS[(weekday - 1) % 7]):
                for t in self.opening_hours.get(day, ()):
                    cuts.add(bisect_left(_MINUTE_TEXTS, t))
            table = bytearray(1440)
            for start, end in itertools.pairwise(sorted(cuts)):  # distinct: start < end
                if self._is_open_at(weekday, _MINUTE_TEXTS[start]):
                    table[start:end] = b"\x01" * (end - start)
            days.append(bytes(table))
        return tuple(days)

    def _is_open_at(self, weekday: int, hhmm: str) -> bool:
        """The rule: open on ``weekday`` (0 Monday) at ``hhmm`` ("HH:MM") when that day's hours
        hold it (an end before the start runs past midnight), or the day before's hours run
        past midnight and end after it. An end of "24:00" is the day's end."""
        today = _WEEKDAYS[weekday]
        yesterday = _WEEKDAYS[(weekday - 1) % 7]
        if today in self.opening_hours:
            start, end = self.opening_hours[today]
            if start <= end and start <= hhmm < end:
                return True
            if end < start and hhmm >= start:
                return True
        if yesterday in self.opening_hours:
            start, end = self.opening_hours[yesterday]
            if end < start and hhmm < end:
                return True
        return False


class City(_Frozen):
    timezone: str = "Europe/Copenhagen"
    pseudonym_scope: PseudonymScope = PseudonymScope.FACILITY
    districts: tuple[District, ...]
    facilities: tuple[Facility, ...]

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except ZoneInfoNotFoundError:
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> City:
        district_ids = [d.id for d in self.districts]
        facility_ids = [f.id for f in self.facilities]
        for kind, ids in (("district", district_ids), ("facility", facility_ids)):
            dupes = {i for i in ids if ids.count(i) > 1}
            if dupes:
                raise ValueError(f"duplicate {kind} id(s): {sorted(dupes)}")
        for f in self.facilities:
            if f.district not in district_ids:
                raise ValueError(f"facility {f.id} names unknown district {f.district}")
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def facility_by_id(self) -> dict[str, Facility]:
        return {f.id: f for f in self.facilities}

    @cached_property
    def district_by_id(self) -> dict[str, District]:
        return {d.id: d for d in self.districts}

    def district_of(self, facility_id: str) -> str | None:
        f = self.facility_by_id.get(facility_id)
        return f.district if f else None


def load_city(path: Path) -> City:
    with path.open(encoding="utf-8") as fh:
        return City.model_validate(yaml.safe_load(fh))
