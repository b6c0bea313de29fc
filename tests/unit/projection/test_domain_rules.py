"""Projection rules that a one-line slip would break silently: what counts as a duplicate, which
alerts are accepted, what is rejected and why (found by mutation testing, docs/mutation-report.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.projection import domain
from shared.events import payloads as p
from shared.events.vocabulary import AlertReason, RefusalReason, Substance
from tests.unit.projection import factory as f

CITY = f.CITY
T = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _alert(facility_id: str | None, district: str = "vesterbro") -> f.Envelope:
    return f.wrap(
        p.DrugAlertRaised(
            alert_id=uuid.uuid4().hex,
            district=district,
            reason=AlertReason.ADULTERANT_FOUND,
            episode=f"adulterant_found/{district}/fentanyl/2026-11-27",
            substance=Substance.FENTANYL,
            facility_id=facility_id,
        ),
        T,
        None,
        district,
    )


def test_an_alert_naming_a_known_facility_is_applied() -> None:
    decoded, rejected = domain.decode_batch([f.record(_alert("halmtorv"))], CITY)
    assert rejected == [] and len(decoded) == 1
    ch = domain.project_decoded(decoded, CITY)
    assert [a.facility_id for a in ch.alerts] == ["halmtorv"]


def test_an_alert_naming_an_unknown_facility_is_dead_lettered() -> None:
    decoded, rejected = domain.decode_batch([f.record(_alert("atlantis"))], CITY)
    assert decoded == [] and rejected[0].reason == "unknown facility in payload"


def test_an_alert_for_an_unknown_payload_district_is_dead_lettered() -> None:
    env = _alert(None)
    bad = f.wrap(env.data.model_copy(update={"district": "atlantis"}), T, None, "vesterbro")
    decoded, rejected = domain.decode_batch([f.record(bad)], CITY)
    assert decoded == [] and rejected[0].reason == "unknown district in payload"


def test_the_same_event_id_from_two_sources_is_two_events() -> None:
    """Deduplication is by (source, id): two facilities may reuse an id (their own clients)."""
    shared_id = uuid.uuid4()
    a = f.wrap(p.VisitRefused(reason=RefusalReason.CAPACITY), T, "halmtorv", id=shared_id)
    b = f.wrap(p.VisitRefused(reason=RefusalReason.CAPACITY), T, "nordvest", id=shared_id)
    decoded, _ = domain.decode_batch([f.record(a, 0), f.record(b, 1)], CITY)
    kept = domain.first_occurrences(decoded)
    assert [d.record.offset for d in kept] == [0, 1]
    assert kept[0].dedup_key == ("/facilities/halmtorv", str(shared_id))
    changes = domain.project_decoded(kept, CITY)
    refusals = {k[0]: v["refusals"] for k, v in changes.daily.items()}
    assert refusals == {"vesterbro": 1, "nordvest": 1}
