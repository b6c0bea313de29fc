"""Issue 13, plausibility in the pure projector: visits outside opening hours are accepted and
flagged (counted per facility for a metric); counts in Kafka records are strict integers."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from services.projection import domain
from shared.events.envelope import DecodeError, decode
from tests.unit.projection import factory as f
from tests.unit.projection.factory import CITY

#: Any Monday: halmtorv opens 07:00-23:00 on weekdays (deploy/city.yaml).
MONDAY = date(2026, 11, 23)


def local(hh: int, mm: int = 0) -> datetime:
    return datetime.combine(MONDAY, time(hh, mm), tzinfo=CITY.zone)


def test_visits_outside_opening_hours_are_applied_and_flagged() -> None:
    events = [
        f.visit_started("v-night", local(3)),
        f.visit_started("v-day", local(12)),
        f.visit_started("v-24h", local(3), facility="maendenes-hjem"),  # open around the clock
    ]
    ch = domain.project(events, CITY)
    assert len(ch.visit_starts) == 3  # all applied
    assert ch.outside_opening_hours == {"halmtorv": 1}


def test_a_bool_count_in_a_record_is_refused_at_decoding() -> None:
    env = f.sharps(local(12), count=3)
    headers = [(k, v.encode()) for k, v in f.to_headers(env).items()]
    value = f.to_value(env).replace(b'"count":3', b'"count":true')
    assert b'"count":true' in value, value
    with pytest.raises(DecodeError):  # the projection dead-letters the record
        decode(headers, value)
