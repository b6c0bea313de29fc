"""The CloudEvents contract: what producers write is what consumers read, and bad records are
refused with a reason that names the problem (never the payload values)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.events import payloads as p
from shared.events.catalogue import CATALOGUE, UPCASTERS, upcast
from shared.events.envelope import (
    DecodeError,
    Envelope,
    decode,
    district_source,
    facility_source,
    from_record_json,
    to_headers,
    to_record_json,
    to_value,
)
from shared.kafka import topics

PSEUDONYM = "a" * 64


def _visit() -> Envelope:
    data = p.VisitStarted(
        visit_id="v1",
        client_pseudonym=PSEUDONYM,
        substances=(p.Substance.HEROIN,),
        route=p.Route.INJECT,
    )
    when = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=1)))
    return Envelope.wrap(data, id=uuid.uuid4(), source=facility_source("halmtorv"), time=when)


def _encoded(env: Envelope) -> tuple[dict[str, bytes], bytes]:
    return {k: v.encode() for k, v in to_headers(env).items()}, to_value(env)


def test_round_trip_keeps_every_attribute() -> None:
    env = _visit()
    assert decode(*_encoded(env)) == env
    assert from_record_json(to_record_json(env)) == env


def test_binary_mode_headers_and_key() -> None:
    env = _visit()
    headers = to_headers(env)
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == "dk.dcr.visit.started"
    assert headers["ce_source"] == "/facilities/halmtorv"
    assert headers["content-type"] == "application/json"
    assert datetime.fromisoformat(headers["ce_time"]).utcoffset() == timedelta(hours=1)
    assert uuid.UUID(headers["ce_id"]) == env.id
    assert env.key == "halmtorv" and env.topic == topics.VISITS
    assert json.loads(to_value(env))["visit_id"] == "v1"


def test_district_events_are_keyed_by_district() -> None:
    data = p.StreetNeedlesCollected(district="nordvest", area="Lygten", count=12)
    env = Envelope.wrap(
        data, id=uuid.uuid4(), source=district_source("nordvest"), time=datetime.now(UTC)
    )
    assert env.key == "nordvest" and env.facility_id is None and env.topic == topics.SUPPLIES


def test_every_event_type_routes_to_a_catalogue_topic() -> None:
    assert {spec.topic for spec in CATALOGUE.values()} <= set(topics.EVENT_TOPICS)
    assert all(spec.model.model_config.get("frozen") for spec in CATALOGUE.values())
    assert all(spec.model.model_config.get("extra") == "forbid" for spec in CATALOGUE.values())


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, v: (h | {"ce_type": b"dk.dcr.nope"}, v), "unknown ce_type"),
        (lambda h, v: ({k: x for k, x in h.items() if k != "ce_id"}, v), "missing CloudEvents"),
        (lambda h, v: (h, b"{not json"), "not valid JSON"),
        (lambda h, v: (h, b"[1, 2]"), "not a JSON object"),
        (lambda h, v: (h | {"ce_schemaversion": b"9"}, v), "newer than"),
        (lambda h, v: (h | {"ce_specversion": b"0.3"}, v), "ce_specversion"),
        (lambda h, v: (h | {"ce_time": b"2026-01-01T00:00:00"}, v), "ce_time"),
        (lambda h, v: (h | {"ce_source": b"/elsewhere/x"}, v), "ce_source"),
        (lambda h, v: (h | {"content-type": b"text/plain"}, v), "content-type"),
        (lambda h, v: (h, v.replace(b'"inject"', b'"intravenous"')), "payload invalid"),
        (lambda h, v: (h, None), "no value"),
    ],
)
def test_bad_records_are_refused_with_a_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    headers, value = mutate(*_encoded(_visit()))
    with pytest.raises(DecodeError) as err:
        decode(headers, value)
    assert reason in err.value.reason
    assert PSEUDONYM not in err.value.reason


def test_payload_rejects_unknown_fields_and_absurd_values() -> None:
    with pytest.raises(ValidationError):
        p.VisitEnded.model_validate({"visit_id": "v1", "client_code": "HT-1"})
    with pytest.raises(ValidationError):
        p.SuppliesDispensed(items={p.SupplyItem.NEEDLES: 10**9})
    with pytest.raises(ValidationError):
        p.SharpsReturned()  # neither count nor weight
    with pytest.raises(ValidationError):
        p.SharpsReturned(count=-1)


def test_upcaster_brings_old_versions_to_current(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = CATALOGUE["dk.dcr.visit.ended"]
    monkeypatch.setitem(
        CATALOGUE, spec.type, type(spec)(spec.type, spec.topic, spec.model, version=2)
    )
    monkeypatch.setitem(UPCASTERS, (spec.type, 1), lambda d: {"visit_id": d["visit"]})
    assert upcast(spec.type, 1, {"visit": "v9"}) == {"visit_id": "v9"}
    with pytest.raises(LookupError):
        upcast("dk.dcr.visit.started", 0, {})


def test_contracts_import_no_plumbing() -> None:
    """shared/events is the contract: it names streams, never a Kafka, database or HTTP library;
    the plumbing (shared/kafka/topics.py) derives its topic names from it."""
    import ast
    from pathlib import Path

    plumbing = ("shared.kafka", "shared.db", "shared.ingest", "aiokafka", "asyncpg", "faststream")
    plumbing += ("httpx", "fastapi", "services")
    for path in Path("shared/events").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(plumbing), f"{path} imports {name}"
    assert tuple(dict.fromkeys(s.topic for s in CATALOGUE.values())) == topics.EVENT_TOPICS
    assert topics.DEADLETTER not in {s.topic for s in CATALOGUE.values()}
