"""The dead-letter reasons operators read, word for word, and the envelope details a consumer
relies on: content-type parameters, bytes that are not UTF-8 in a header, the
schema version header and the upcasting of old versions (found by mutation testing,
docs/mutation-report.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared.events import payloads as p
from shared.events.catalogue import CATALOGUE, UPCASTERS, upcast
from shared.events.envelope import (
    DecodeError,
    Envelope,
    decode,
    facility_source,
    schema_version,
    to_headers,
    to_value,
)

T = datetime(2026, 11, 27, 10, tzinfo=UTC)
ID = uuid.UUID(int=42)


def _refusal() -> Envelope:
    return Envelope.wrap(
        p.VisitRefused(reason=p.RefusalReason.CAPACITY),
        id=ID,
        source=facility_source("halmtorv"),
        time=T,
    )


def _headers(env: Envelope) -> dict[str, bytes]:
    return {k: v.encode() for k, v in to_headers(env).items()}


def _as_type(event_type: str) -> dict[str, bytes]:
    """A refusal's headers naming another type at that type's current schema version."""
    version = str(CATALOGUE[event_type].version).encode()
    return _headers(_refusal()) | {"ce_type": event_type.encode(), "ce_schemaversion": version}


def _reason(headers: dict[str, bytes], value: bytes | None) -> str:
    with pytest.raises(DecodeError) as err:
        decode(headers, value)
    assert str(err.value) == err.value.reason
    return err.value.reason


def test_the_headers_of_an_event() -> None:
    assert to_headers(_refusal()) == {
        "ce_specversion": "1.0",
        "ce_id": str(ID),
        "ce_type": "dk.dcr.visit.refused",
        "ce_source": "/facilities/halmtorv",
        "ce_time": "2026-11-27T10:00:00+00:00",
        "ce_schemaversion": str(CATALOGUE["dk.dcr.visit.refused"].version),  # 2: key id
        "content-type": "application/json",
    }


def test_content_type_parameters_are_accepted() -> None:
    env = _refusal()
    headers = _headers(env) | {"content-type": b"application/json; charset=utf-8"}
    assert decode(headers, to_value(env)) == env


def test_a_header_that_is_not_utf8_does_not_stop_decoding() -> None:
    env = _refusal()
    assert decode(_headers(env) | {"ce_subject": b"visit \xff"}, to_value(env)) == env
    bad_type = _headers(env) | {"ce_type": b"dk.dcr.\xff"}
    assert _reason(bad_type, to_value(env)) == "unknown ce_type 'dk.dcr.\ufffd'"


def test_a_missing_schema_version_means_version_1() -> None:
    env = _refusal()
    headers = {k: v for k, v in _headers(env).items() if k != "ce_schemaversion"}
    assert decode(headers, to_value(env)) == env


@pytest.mark.parametrize("spelling", ["\uff11", "\u0661", " 1", "1 ", "+1", "1_0"])
def test_a_schema_version_is_ascii_digits_only(spelling: str) -> None:
    """``int`` reads these; no producer writes them. Accepted, a full-width 1 once wedged
    the projection: its claim read the header's bytes, which ``int`` refuses, and failed the
    whole batch on every retry. Refused here, such a record is dead-lettered like any other."""
    env = _refusal()
    headers = _headers(env) | {"ce_schemaversion": spelling.encode()}
    assert _reason(headers, to_value(env)) == "ce_schemaversion is not an integer"
    with pytest.raises(DecodeError):
        schema_version(headers)


def test_the_schema_version_read_is_the_last_one_named() -> None:
    assert schema_version([("ce_schemaversion", b"2"), ("ce_schemaversion", b"01")]) == 1
    assert schema_version({"ce_type": b"x"}) == 1  # none named: version 1


def test_reasons_word_for_word() -> None:
    env = _refusal()
    h, v = _headers(env), to_value(env)
    without = {k: x for k, x in h.items() if k not in ("ce_id", "ce_time")}
    assert _reason(without, v) == "missing CloudEvents header(s): ce_id, ce_time"
    assert _reason(h | {"ce_specversion": b"0.3"}, v) == "unsupported ce_specversion '0.3'"
    assert _reason(h | {"content-type": b"text/plain"}, v) == "content-type is not application/json"
    long_type = b"dk.dcr." + b"x" * 300
    assert _reason(h | {"ce_type": long_type}, v) == f"unknown ce_type {long_type[:100].decode()!r}"
    assert _reason(h | {"ce_schemaversion": b"one"}, v) == "ce_schemaversion is not an integer"
    assert _reason(h, None) == "record has no value"
    bad_attributes = "invalid ce_id, ce_source or ce_time header"
    assert _reason(h | {"ce_id": b"42"}, v) == bad_attributes
    assert _reason(h | {"ce_time": b"yesterday"}, v) == bad_attributes
    assert _reason(h | {"ce_time": b"2026-11-27T10:00:00"}, v) == bad_attributes
    assert _reason(h | {"ce_source": b"/facilities/"}, v) == bad_attributes
    assert _reason(h, b"{not json") == "value is not valid JSON"
    assert _reason(h, b"[1]") == "value is not a JSON object"
    assert _reason(h, b'{"reason": "bored"}') == (
        "payload invalid for dk.dcr.visit.refused: reason"
    )


def test_payload_reasons_name_nested_fields_all_fields_and_the_root() -> None:
    incident = _as_type("dk.dcr.incident.reported")
    value = (
        b'{"incident_id": "i1", "kind": "seizure", "severity": "low", "outcome": "left",'
        b' "life_threatening": false, "interventions": {"naloxone_doses": 99}}'
    )
    assert _reason(incident, value) == (
        "payload invalid for dk.dcr.incident.reported: interventions.naloxone_doses"
    )
    assert _reason(incident, b'{"incident_id": "i1"}') == (
        "payload invalid for dk.dcr.incident.reported: kind, life_threatening, outcome, severity"
    )
    sharps = _as_type("dk.dcr.sharps.returned")
    assert _reason(sharps, b"{}") == "payload invalid for dk.dcr.sharps.returned: <root>"


@pytest.fixture
def visit_ended_v3(monkeypatch: pytest.MonkeyPatch) -> str:
    """dk.dcr.visit.ended at version 3: v1 {"visit": x} -> v2 {"id": x} -> v3 {"visit_id": x}."""
    spec = CATALOGUE["dk.dcr.visit.ended"]
    monkeypatch.setitem(CATALOGUE, spec.type, type(spec)(spec.type, spec.topic, spec.model, 3))
    monkeypatch.setitem(UPCASTERS, (spec.type, 1), lambda d: {"id": d["visit"]})
    monkeypatch.setitem(UPCASTERS, (spec.type, 2), lambda d: {"visit_id": d["id"]})
    return spec.type


def test_old_versions_are_upcast_step_by_step(visit_ended_v3: str) -> None:
    assert upcast(visit_ended_v3, 1, {"visit": "v9"}) == {"visit_id": "v9"}
    assert upcast(visit_ended_v3, 3, {"visit_id": "v9"}) == {"visit_id": "v9"}
    env = Envelope.wrap(
        p.VisitEnded(visit_id="v9"), id=ID, source=facility_source("halmtorv"), time=T
    )
    headers = _headers(env) | {"ce_schemaversion": b"1"}
    assert decode(headers, b'{"visit": "v9"}') == env
    assert _reason(headers, b"[1]") == "value is not a JSON object"
    assert _reason(headers, b"{nope") == "value is not valid JSON"
    assert _reason(headers | {"ce_schemaversion": b"4"}, b"{}") == (
        "schema version 4 of dk.dcr.visit.ended is newer than 3"
    )


def test_a_missing_upcaster_is_named(visit_ended_v3: str) -> None:
    del UPCASTERS[(visit_ended_v3, 2)]
    with pytest.raises(LookupError, match=r"^no upcaster for dk.dcr.visit.ended v2$"):
        upcast(visit_ended_v3, 1, {"visit": "v9"})


def test_the_current_version_needs_no_upcaster() -> None:
    assert upcast("dk.dcr.visit.ended", 1, {"visit_id": "v1"}) == {"visit_id": "v1"}


def test_an_alert_window_needs_both_ends() -> None:
    base = {"alert_id": "a1", "district": "amager", "reason": "overdose_cluster", "episode": "e"}
    assert p.DrugAlertRaised.model_validate(base | {"window_start": T}).window() is None
    assert p.DrugAlertRaised.model_validate(base | {"window_end": T}).window() is None
    both = p.DrugAlertRaised.model_validate(base | {"window_start": T, "window_end": T})
    assert both.window() == (T, T)


def test_an_envelope_built_around_validation_names_its_bad_source() -> None:
    env = Envelope.model_construct(
        id=ID, type="dk.dcr.visit.refused", source="/elsewhere/x", time=T, data=None
    )
    with pytest.raises(DecodeError) as err:
        _ = env.key
    assert err.value.reason == "ce_source is not /facilities/<id> or /districts/<id>"
    assert str(err.value) == err.value.reason
