"""The per-room and period read models agree with an independent oracle fed the same events:
a district's totals over a period equal the sum of the oracle's district days for every count
and breakdown, distinct people equal the distinct pseudonyms of the period's visits, and the
rooms of a district add up to it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from services.projection.app import create_app as projection_app
from shared.events import payloads as p
from tests.integration.projection.harness import produce, wait_caught_up
from tests.openapi_check import conforms
from tests.support import ops_auth, serve
from tests.unit.projection.factory import CITY, random_stream
from tests.unit.projection.oracle import Oracle

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

#: oracle day field -> period cell
PLAIN = {
    f: f
    for f in (
        "visits",
        "assisted_injections",
        "refusals",
        "referrals",
        "services",
        "supplies_dispensed",
        "sharps_returned_count",
        "incidents",
        "overdoses",
        "life_threatening",
        "naloxone_doses",
        "ambulance_calls",
        "hospital_transfers",
        "deaths",
        "drug_checks",
        "drug_checks_unexpected",
    )
}
BREAKDOWNS = {
    "refusals_by_reason": "refusals",
    "referrals_by_kind": "referrals",
    "services_by_kind": "services",
    "supplies_by_item": "supplies_dispensed",
    "incidents_by_kind": "incidents",
    "incidents_by_outcome": "incident_outcomes",
}


def _expected(oracle: Oracle, district: str, first: Any, last: Any) -> Counter[str]:
    total: Counter[str] = Counter()
    for (d, day), figures in oracle.district_days().items():
        if d != district or not first <= day <= last:
            continue
        for field, cell in PLAIN.items():
            total[cell] += int(figures.get(field, 0))
        for field, measure in BREAKDOWNS.items():
            for key, n in figures.get(field, {}).items():
                total[f"{measure}.{key}"] += int(n)
    return total


async def test_period_totals_equal_the_oracle(iso_env: TestEnv) -> None:
    now = datetime.now(UTC)
    events = random_stream(seed=41, n=1500, base=now, days=6)
    await produce(iso_env.bootstrap, iso_env.topic_prefix, events)
    oracle = Oracle(CITY).feed(events)
    days = sorted(k[1] for k in oracle.district_days())
    first, last = days[0], days[-1]
    span = {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}
    async with serve(
        app := projection_app(iso_env.projection()), headers=ops_auth(iso_env)
    ) as client:
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        for district in CITY.districts:
            r = await client.get("/v1/periods", params={**span, "scope": f"district:{district.id}"})
            assert r.status_code == 200, r.text
            conforms(app, "/v1/periods", r.json())
            got = r.json()["figures"]
            expected = _expected(oracle, district.id, first, last)
            diff = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
            assert not diff, f"{district.id}: period != oracle: {diff}"
            people = {
                (e.facility_id, e.data.client_pseudonym)
                for e in events
                if isinstance(e.data, p.VisitStarted)
                and CITY.district_of(e.facility_id or "") == district.id
                and first <= oracle.day(e.time) <= last
            }
            assert got["people"] == len(people), district.id
            rooms = [f.id for f in CITY.facilities if f.district == district.id]
            summed: Counter[str] = Counter()
            for room in rooms:
                rr = await client.get("/v1/periods", params={**span, "scope": f"room:{room}"})
                summed.update({k: v for k, v in rr.json()["figures"].items() if v})
            # kg are decimals in the database, floats in JSON: compare to the gram
            assert {k: round(v, 3) for k, v in got.items() if v} == {
                k: round(v, 3) for k, v in summed.items()
            }, district.id
        assert expected_nonzero(oracle)


def expected_nonzero(oracle: Oracle) -> bool:
    """The stream exercised what is compared (not a vacuous pass)."""
    fields = Counter[str]()
    for figures in oracle.district_days().values():
        fields.update(k for k, v in figures.items() if v)
    return all(fields[f] for f in ("visits", "incidents", "referrals", "supplies_dispensed"))
