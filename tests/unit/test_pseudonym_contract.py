"""Issue 13: the key id travels with each pseudonym (visit events at schema version 2, v1
records upcast to key "k0"), and the pseudonym scope decides whether one code in two rooms is
one client."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from shared.events import payloads as p
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import Envelope, decode, facility_source, to_headers, to_value
from shared.privacy import CITY_SCOPE, Pseudonymiser

PSEUDONYM = "ab" * 32


def v1_record(data: dict[str, object], event_type: str) -> tuple[list[tuple[str, bytes]], bytes]:
    env = Envelope.wrap(
        p.VisitStarted(
            visit_id="v1", client_pseudonym=PSEUDONYM, substances=("heroin",), route="inject"
        ),
        id=uuid.uuid4(),
        source=facility_source("halmtorv"),
        time=datetime(2026, 1, 5, 10, tzinfo=UTC),
    )
    headers = {**to_headers(env), "ce_type": event_type, "ce_schemaversion": "1"}
    return [(k, v.encode()) for k, v in headers.items()], json.dumps(data).encode()


def test_visit_events_are_at_version_2_and_carry_the_key_id() -> None:
    assert CATALOGUE["dk.dcr.visit.started"].version == 2
    assert CATALOGUE["dk.dcr.visit.refused"].version == 2
    env = Envelope.wrap(
        p.VisitStarted(
            visit_id="v2",
            client_pseudonym=PSEUDONYM,
            pseudonym_key="k3",
            substances=("heroin",),
            route="inject",
        ),
        id=uuid.uuid4(),
        source=facility_source("halmtorv"),
        time=datetime(2026, 1, 5, 10, tzinfo=UTC),
    )
    headers = [(k, v.encode()) for k, v in to_headers(env).items()]
    decoded = decode(headers, to_value(env))
    assert isinstance(decoded.data, p.VisitStarted) and decoded.data.pseudonym_key == "k3"


def test_version_1_records_are_upcast_to_the_legacy_key() -> None:
    started = {
        "visit_id": "v1",
        "client_pseudonym": PSEUDONYM,
        "substances": ["heroin"],
        "route": "inject",
    }
    env = decode(*v1_record(started, "dk.dcr.visit.started"))
    assert isinstance(env.data, p.VisitStarted) and env.data.pseudonym_key == p.LEGACY_KEY_ID
    refused = decode(*v1_record({"reason": "capacity"}, "dk.dcr.visit.refused"))
    assert isinstance(refused.data, p.VisitRefused) and refused.data.pseudonym_key is None
    with_code = decode(
        *v1_record({"reason": "capacity", "client_pseudonym": PSEUDONYM}, "dk.dcr.visit.refused")
    )
    assert isinstance(with_code.data, p.VisitRefused)
    assert with_code.data.pseudonym_key == p.LEGACY_KEY_ID


def test_city_scope_links_one_code_across_rooms_and_facility_scope_does_not() -> None:
    ps = Pseudonymiser(b"0123456789abcdef0123456789abcdef", key_id="k1")
    assert ps.pseudonym(CITY_SCOPE, "C-7") == ps.pseudonym(CITY_SCOPE, "C-7")
    assert ps.pseudonym("halmtorv", "C-7") != ps.pseudonym("maendenes-hjem", "C-7")
    assert ps.pseudonym(CITY_SCOPE, "C-7") not in {
        ps.pseudonym(f, "C-7") for f in ("halmtorv", "maendenes-hjem")
    }
    assert "0123" not in repr(ps) and "k1" in repr(ps)
