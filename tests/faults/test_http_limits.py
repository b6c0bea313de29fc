"""Hostile input over HTTP, against the services as real uvicorn processes.

Oversized bodies (the ingest limit is 64 KiB, the read API's 16 KiB): refused with 413 and a
message whether the size is declared (Content-Length, also an absurd one with no body following)
or not (chunked transfer encoding, in large or small chunks); a body of exactly the limit is
read and validated (422), one byte more is 413. Absurd values (negative counts, 10^9 needles,
year 3000, NaN/Infinity weights, huge strings, numbers and lists, deep nesting) are refused with
a 4xx naming the field and never echo the submitted value. Nothing refused is published, and
the services stay healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.faults.conftest import Services, report
from tests.integration.projection.harness import end_offsets

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024


def _at(minutes_ago: float = 3) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


async def _raw(
    port: int,
    path: str,
    headers: dict[str, str],
    chunks: list[bytes],
    *,
    chunked: bool,
    content_length: int | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, Any]]:
    """Send one HTTP/1.1 request byte by byte; return the status and JSON body of the answer.

    The server may answer (and close) before the whole body is sent: the answer is read while
    writing, because the close then resets the connection (unread data on the server's side)
    and a reset makes asyncio drop what it had not handed out yet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received: list[bytes] = []

    async def read_answer() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.append(chunk)

    answer = asyncio.create_task(read_answer())
    try:
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        else:
            size = content_length if content_length is not None else sum(map(len, chunks))
            head.append(f"Content-Length: {size}")
        with contextlib.suppress(ConnectionError):
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
            for c in chunks:
                writer.write(f"{len(c):x}\r\n".encode() + c + b"\r\n" if chunked else c)
                await writer.drain()
            if chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        await asyncio.wait_for(answer, timeout=15)
    finally:
        answer.cancel()
        writer.close()
    raw = b"".join(received)
    if not raw:
        return NO_ANSWER, {}
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(body) if body.strip() else {}


#: :func:`_raw`'s status when no byte of an answer arrived.
NO_ANSWER = 0
#: Attempts of a request whose answer never arrived. A server that answers 413 before the whole
#: body is sent closes the connection with input unread; TCP then resets it, and the reset can
#: discard the answer (still in the server's send queue, or in the client's receive queue
#: before it was read): one rehearsal in many saw nothing at all for "chunked 7 x 10000".
ATTEMPTS = 3


async def _answered(
    port: int, path: str, headers: dict[str, str], chunks: list[bytes], **options: Any
) -> tuple[int, dict[str, Any]]:
    """:func:`_raw`, sent again (up to :data:`ATTEMPTS` times) while no answer arrived."""
    for _ in range(ATTEMPTS):
        status, answer = await _raw(port, path, headers, chunks, **options)
        if status != NO_ANSWER:
            return status, answer
    raise AssertionError(f"no answer to {ATTEMPTS} attempts of {path}")


async def test_oversized_bodies_are_refused_with_413(fault_services: Services) -> None:
    env = fault_services.env
    supply = fault_services.procs["supply"]
    auth = {
        "Authorization": f"Bearer {env.tokens['sanitation-city']}",
        "Content-Type": "application/json",
    }
    path = "/v1/street-needles"

    def body(size: int) -> bytes:
        """A street-needles report padded (in ``area``) to exactly ``size`` bytes."""
        base = {"district": "vesterbro", "occurred_at": _at(), "count": 1, "area": ""}
        pad = size - len(json.dumps(base).encode())
        out = json.dumps({**base, "area": "a" * pad}).encode()
        assert len(out) == size
        return out

    big = body(70_000)
    before = await end_offsets(env.bootstrap, env.topic_prefix)
    outcomes: dict[str, int] = {}
    tens = [big[i : i + 10_000] for i in range(0, len(big), 10_000)]
    kibs = [big[i : i + 1024] for i in range(0, len(big), 1024)]
    cases = [
        ("Content-Length 70000", [big], False, None, 413),
        ("chunked 7 x 10000", tens, True, None, 413),
        ("chunked 1 KiB chunks", kibs, True, None, 413),
        ("Content-Length 10^12, no body", [], False, 10**12, 413),
        ("Content-Length exactly 64 KiB", [body(LIMIT)], False, None, 422),
        ("chunked exactly 64 KiB", [body(LIMIT)], True, None, 422),
        ("Content-Length 64 KiB + 1", [body(LIMIT + 1)], False, None, 413),
        ("chunked 64 KiB + 1", [body(LIMIT + 1)], True, None, 413),
    ]  # fmt: skip
    for name, chunks, chunked, declared, want in cases:
        status, answer = await _answered(
            supply.port, path, auth, chunks, chunked=chunked, content_length=declared
        )
        outcomes[name] = status
        assert status == want, (name, status, answer)
        if want == 413:
            assert "larger than 65536 bytes" in answer["detail"], answer
        else:  # read whole, then refused for the field
            assert [d["loc"] for d in answer["detail"]] == [["body", "area"]], answer
    # the read API (no bodies expected) has a 16 KiB limit
    projection = fault_services.procs["projection"]
    status, answer = await _answered(
        projection.port, "/v1/districts", {}, [b"x" * 20_000], chunked=True, method="GET"
    )
    outcomes["projection GET with a chunked 20 KB body"] = status
    assert status == 413 and "larger than 16384 bytes" in answer["detail"]

    assert await end_offsets(env.bootstrap, env.topic_prefix) == before
    for p in fault_services.procs.values():
        assert await p.healthy()
    report("oversized bodies", outcomes=outcomes)


Case = tuple[str, str, str, dict[str, Any], list[str]]
SHARPS = ("supply", "/v1/sharps/returned")
STREET = ("supply", "/v1/street-needles")
REFUSALS = ("intake", "/v1/refusals")
VISITS = ("intake", "/v1/visits")


def _absurd() -> list[Case]:
    """(name, service, path, body, expected loc): every body has one absurd field."""
    fac = {"facility_id": "halmtorv", "occurred_at": _at()}
    visit = {**fac, "client_code": "HT-1", "substances": ["heroin"], "route": "inject"}
    refusal = {**fac, "reason": "capacity"}
    incident = {
        **fac,
        "kind": "opioid_overdose",
        "severity": "severe",
        "life_threatening": True,
        "outcome": "recovered_on_site",
    }
    street = {"district": "vesterbro", "area": "Halmtorvet", "occurred_at": _at(), "count": 1}
    cases: list[tuple[str, tuple[str, str], dict[str, Any], list[str]]] = [
        ("negative count", SHARPS, {**fac, "count": -1}, ["count"]),
        ("10^9 needles returned", SHARPS, {**fac, "count": 10**9}, ["count"]),
        ("10^100 needles", SHARPS, {**fac, "count": 10**100}, ["count"]),
        ("10^9 street needles", STREET, {**street, "count": 10**9}, ["count"]),
        (
            "10^9 syringes dispensed",
            ("supply", "/v1/supplies/dispensed"),
            {**fac, "items": {"syringes": 10**9}},
            ["items", "syringes"],
        ),
        (
            "negative stock",
            ("supply", "/v1/stock/counts"),
            {**fac, "items": {"syringes": -5}},
            ["items", "syringes"],
        ),
        (
            "unknown item",
            ("supply", "/v1/stock/deliveries"),
            {**fac, "items": {"rocket": 1}},
            ["items", "rocket", "[key]"],
        ),
        ("no items", ("supply", "/v1/supplies/dispensed"), {**fac, "items": {}}, ["items"]),
        ("weight 10^6 kg", SHARPS, {**fac, "weight_kg": 1e6}, ["weight_kg"]),
        ("negative weight", SHARPS, {**fac, "weight_kg": -0.5}, ["weight_kg"]),
        ("NaN weight", SHARPS, {**fac, "weight_kg": float("nan")}, ["weight_kg"]),
        ("Infinity weight", SHARPS, {**fac, "weight_kg": float("inf")}, ["weight_kg"]),
        ("-Infinity weight", STREET, {**street, "weight_kg": float("-inf")}, ["weight_kg"]),
        (
            "year 3000",
            REFUSALS,
            {**refusal, "occurred_at": "3000-01-01T00:00:00Z"},
            ["occurred_at"],
        ),
        ("year 1", REFUSALS, {**refusal, "occurred_at": "0001-01-01T00:00:00Z"}, ["occurred_at"]),
        ("no time zone", REFUSALS, {**refusal, "occurred_at": "2026-11-28T10:00"}, ["occurred_at"]),
        ("month 13", REFUSALS, {**refusal, "occurred_at": "2026-13-01T10:00Z"}, ["occurred_at"]),
        (
            "10^9 naloxone doses",
            ("incident", "/v1/incidents"),
            {**incident, "interventions": {"naloxone_doses": 10**9}},
            ["interventions", "naloxone_doses"],
        ),
        ("huge client code", VISITS, {**visit, "client_code": "C" * 50_000}, ["client_code"]),
        ("1000 substances", VISITS, {**visit, "substances": ["heroin"] * 1000}, ["substances"]),
        ("booth 10^9", VISITS, {**visit, "booth": 10**9}, ["booth"]),
        ("huge facility id", REFUSALS, {**refusal, "facility_id": "h" * 40_000}, ["facility_id"]),
        (
            "huge visit id",
            ("intake", "/v1/visits/end"),
            {**fac, "visit_id": "v" * 50_000},
            ["visit_id"],
        ),
        ("huge area", STREET, {**street, "area": "a" * 60_000}, ["area"]),
        ("unknown facility", REFUSALS, {**refusal, "facility_id": "atlantis"}, []),
        ("unknown district", STREET, {**street, "district": "atlantis"}, ["district"]),
        (
            "thousands of extra fields",
            SHARPS,
            {**fac, "count": 1, **{f"k{i}": i for i in range(3000)}},
            ["k0"],
        ),
    ]
    return [(name, svc, path, body, ["body", *loc]) for name, (svc, path), body, loc in cases]


async def test_absurd_values_are_refused_naming_the_field(fault_services: Services) -> None:
    env = fault_services.env
    before = await end_offsets(env.bootstrap, env.topic_prefix)
    seen: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=15) as client:
        for name, service, path, body, loc in _absurd():
            facility = body.get("facility_id")
            principal = "sanitation-city" if "district" in body else "halmtorv"
            if facility == "atlantis":
                principal = "halmtorv"
            content = json.dumps(body)  # NaN/Infinity as JS literals, as a sloppy client sends
            r = await client.post(
                fault_services.url(service) + path,
                content=content,
                headers={
                    "Authorization": f"Bearer {env.tokens[principal]}",
                    "Content-Type": "application/json",
                },
            )
            seen[name] = str(r.status_code)
            if name == "unknown facility":  # a token may only report for its own facility
                assert r.status_code == 403, r.text
                continue
            assert r.status_code == 422, (name, r.status_code, r.text[:300])
            locs = [d["loc"] for d in r.json()["detail"]]
            assert loc in locs, (name, locs[:5])
            assert all(d["msg"] for d in r.json()["detail"])
            assert len(r.content) < 1_000_000 and "aaaaaaaaaa" not in r.text
            assert "CCCCCCCCCC" not in r.text and "vvvvvvvvvv" not in r.text
        deep = '{"facility_id": "halmtorv", "count": 1, "x": ' + "[" * 20_000 + "]" * 20_000 + "}"
        r = await client.post(
            fault_services.url("supply") + "/v1/sharps/returned",
            content=deep,
            headers={
                "Authorization": f"Bearer {env.tokens['halmtorv']}",
                "Content-Type": "application/json",
            },
        )
        seen["20000-deep nesting"] = str(r.status_code)
        assert r.status_code == 400 and r.json()["detail"], r.text
        key = "k" * 5000
        r = await client.post(
            fault_services.url("supply") + "/v1/sharps/returned",
            json={"facility_id": "halmtorv", "occurred_at": _at(), "count": 1},
            headers={"Authorization": f"Bearer {env.tokens['halmtorv']}", "Idempotency-Key": key},
        )
        seen["5000-char Idempotency-Key"] = str(r.status_code)
        assert r.status_code == 422
        assert ["header", "Idempotency-Key"] in [d["loc"] for d in r.json()["detail"]]
    assert await end_offsets(env.bootstrap, env.topic_prefix) == before, "a refusal published"
    for p in fault_services.procs.values():
        assert await p.healthy()
    report("absurd values", answers=seen)
