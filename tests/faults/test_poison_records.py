"""Hostile input on the topics: poison records written by a Kafka client that is not ours
(Debian's ``kcat``), between valid events, while the projection runs (a real process).

Every poison record lands in the dead-letter topic with a ``dlq_reason`` header naming what is
wrong; ``/healthz`` stays 200 the whole time; the valid events before and after are applied
(oracle through the read API, and the reconciliation command, which also checks that every
skipped record has its dead letter).

The 5 MB value: the topic keeps Kafka's default limit (``max.message.bytes`` = 1 MiB + 12 bytes;
real events are well under 1 KiB, so it is not raised). kcat refuses to send it with its default
client limit, and with that limit raised the broker refuses it: both refusals are asserted and
nothing reaches the topic. A value just under the broker's limit is written instead: its dead
letter cannot carry a copy of a value that size (the letter would be over the limit and, before
the fix in shared/kafka/deadletter.py, stopped the projection at that record for good), so the
letter has no value and a ``dlq_value_omitted`` header with the original size.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from harness.process import PROJECTION_APP, ServiceProcess
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import Envelope, to_headers, to_value
from shared.kafka.deadletter import VALUE_OMITTED_HEADER
from shared.kafka.topics import DEADLETTER, VISITS
from tests.faults.conftest import reconcile, report
from tests.integration.projection.harness import (
    assert_api_matches_oracle,
    end_offsets,
    produce,
    wait_caught_up,
)
from tests.support import TestEnv, ops_auth, poll_until, read_topic
from tests.unit.projection.factory import CITY, random_stream, refused
from tests.unit.projection.oracle import Oracle

pytestmark = pytest.mark.integration

#: Kafka's default broker/topic limit for one record batch (message.max.bytes)
BROKER_LIMIT = 1024 * 1024 + 12


@dataclass
class Poison:
    name: str
    reason: str  # expected in dlq_reason
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    key: str = "halmtorv"


@dataclass(frozen=True)
class Sent:
    returncode: int
    stderr: str


async def _kcat(kcat: str, bootstrap: str, topic: str, p: Poison, work: Path, *config: str) -> Sent:
    """Produce ``p`` as one record with kcat: the value from a file, or (no value) a NULL value
    from a ``key:`` line on stdin (kcat skips empty files and lines)."""
    argv = [kcat, "-P", "-b", bootstrap, "-t", topic]
    for k, v in {**p.headers, "poison": p.name}.items():
        argv += ["-H", f"{k}={v}"]
    for c in config:
        argv += ["-X", c]
    if p.value is None:
        argv += ["-K", ":", "-Z"]
        stdin = f"{p.key}:\n".encode()
    else:
        path = work / f"{p.name}.value"
        path.write_bytes(p.value)
        argv += ["-k", p.key, str(path)]
        stdin = b""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
    assert proc.returncode is not None
    return Sent(proc.returncode, err.decode(errors="replace"))


def _ce(env: Envelope, **over: str) -> dict[str, str]:
    return {**to_headers(env), **over}


async def test_poison_records_are_dead_lettered_and_the_projection_goes_on(
    fault_env: TestEnv, tmp_path: Path, kcat: str
) -> None:
    now = datetime.now(UTC)
    events = random_stream(seed=51, n=400, base=now)
    before, after = events[:200], events[200:]
    template = refused(now - timedelta(minutes=5))
    stranger = Envelope.wrap(
        template.data, id=uuid.uuid4(), source="/facilities/atlantis", time=template.time
    )
    good_json = to_value(template)
    poisons = [
        Poison("invalid-json", "value is not valid JSON", b'{"reason": "capacity"', _ce(template)),
        Poison("binary-garbage", "value is not valid JSON", bytes(range(256)), _ce(template)),
        Poison(
            "unknown-type",
            "unknown ce_type",
            good_json,
            _ce(template, ce_type="dk.dcr.teleport.happened"),
        ),
        Poison("no-headers", "missing CloudEvents header(s)", good_json),
        Poison(
            "some-headers-missing",
            "missing CloudEvents header(s): ce_id, ce_time",
            good_json,
            {k: v for k, v in _ce(template).items() if k not in ("ce_id", "ce_time")},
        ),
        Poison(
            "schema-version-99",
            "schema version 99 of dk.dcr.visit.refused is newer than "
            f"{CATALOGUE['dk.dcr.visit.refused'].version}",
            good_json,
            _ce(template, ce_schemaversion="99"),
        ),
        Poison(
            "schema-version-text",
            "ce_schemaversion is not an integer",
            good_json,
            _ce(template, ce_schemaversion="one"),
        ),
        Poison(  # int() reads it; it once wedged the projection (envelope._schema_version)
            "schema-version-full-width-digit",
            "ce_schemaversion is not an integer",
            good_json,
            _ce(template, ce_schemaversion="\uff11"),
        ),
        Poison(
            "specversion-0.3",
            "unsupported ce_specversion",
            good_json,
            _ce(template, ce_specversion="0.3"),
        ),
        Poison("null-value", "record has no value", None, _ce(template)),
        Poison(
            "bad-id", "invalid ce_id, ce_source or ce_time", good_json, _ce(template, ce_id="x")
        ),
        Poison(
            "payload-invalid",
            "payload invalid for dk.dcr.visit.refused: reason",
            json.dumps({"reason": "bored"}).encode(),
            _ce(template),
        ),
        Poison(
            "unknown-facility",
            "unknown facility in source",
            to_value(stranger),
            _ce(stranger),
            key="atlantis",
        ),
    ]
    topic = fault_env.topic(VISITS)
    proc = ServiceProcess(tmp_path, "projection", PROJECTION_APP, base=fault_env.env()).start()
    health: list[int] = []
    latency: list[float] = []
    watching = True

    async def watch_health() -> None:
        async with httpx.AsyncClient(timeout=5) as c:
            while watching:
                t0 = time.monotonic()
                health.append((await c.get(f"{proc.url}/healthz")).status_code)
                latency.append(time.monotonic() - t0)
                await asyncio.sleep(0.05)  # sampling interval of the health watch

    try:
        await proc.wait_healthy(timeout=60)
        watcher = asyncio.create_task(watch_health())
        await produce(fault_env.bootstrap, fault_env.topic_prefix, before)
        for p in poisons:
            done = await _kcat(kcat, fault_env.bootstrap, topic, p, tmp_path)
            assert done.returncode == 0, (p.name, done.stderr)

        # 5 MB: refused by kcat's own limit, then (limit raised) by the broker; nothing stored
        size_before = sum((await end_offsets(fault_env.bootstrap, fault_env.topic_prefix)).values())
        huge = Poison("5mb", "-", b'{"reason": "' + b"a" * (5 * 1024 * 1024) + b'"}', _ce(template))
        by_client = await _kcat(kcat, fault_env.bootstrap, topic, huge, tmp_path)
        by_broker = await _kcat(
            kcat, fault_env.bootstrap, topic, huge, tmp_path, "message.max.bytes=6000000"
        )
        assert by_client.returncode != 0 and by_broker.returncode != 0
        assert "Message size too large" in by_client.stderr, by_client.stderr
        assert "Broker: Message size too large" in by_broker.stderr, by_broker.stderr

        # just under the broker's limit: the largest padding it accepts (probed downwards)
        near: Poison | None = None
        for size in range(BROKER_LIMIT - 200, BROKER_LIMIT - 2000, -64):
            candidate = Poison(
                "near-limit",
                "payload invalid for dk.dcr.visit.refused: padding",
                json.dumps({"reason": "capacity", "padding": "a" * size}).encode(),
                _ce(template),
            )
            attempt = await _kcat(
                kcat, fault_env.bootstrap, topic, candidate, tmp_path, "message.max.bytes=2000000"
            )
            if attempt.returncode == 0:
                near = candidate
                break
            assert "Message size too large" in attempt.stderr, attempt.stderr
        assert near is not None, "no value near the limit was accepted"
        size_after = sum((await end_offsets(fault_env.bootstrap, fault_env.topic_prefix)).values())
        assert size_after == size_before + 1  # only the near-limit record, not the 5 MB one

        await produce(fault_env.bootstrap, fault_env.topic_prefix, after)
        await wait_caught_up(fault_env.dsn, fault_env.bootstrap, fault_env.topic_prefix, 60)
        oracle = Oracle(CITY).feed(events)
        days = [k[1] for k in oracle.district_days()]
        async with httpx.AsyncClient(
            base_url=proc.url, timeout=10, headers=ops_auth(fault_env)
        ) as client:
            await assert_api_matches_oracle(client, oracle, min(days), max(days))
        watching = False
        await watcher
        assert proc.alive
        assert health and set(health) == {200}, f"healthz answered {sorted(set(health))}"

        expected = [*poisons, near]
        letters: dict[str, dict[str, bytes]] = {}
        values: dict[str, bytes | None] = {}

        async def all_letters() -> bool:
            for r in await read_topic(fault_env.bootstrap, fault_env.topic(DEADLETTER)):
                name = r.headers.get("poison", b"").decode()
                letters[name] = r.headers
                values[name] = r.value
            return all(p.name in letters for p in expected)

        try:
            await poll_until(all_letters, timeout=30, what="every poison record dead-lettered")
        except AssertionError:
            raise AssertionError(f"dead-lettered only {sorted(letters)}") from None
        deadlettered = await proc.metric(
            "dcr_deadlettered_records_total", fault_env.tokens["prometheus"]
        )
    finally:
        proc.terminate()

    for p in expected:
        h = letters[p.name]
        assert p.reason in h["dlq_reason"].decode(), (p.name, h["dlq_reason"])
        assert h["dlq_original_topic"].decode() == topic
        assert h["dlq_service"] == b"projection"
        if p is near:
            assert (
                values[p.name] is None
                and h[VALUE_OMITTED_HEADER] == str(len(p.value or b"")).encode()
            )
        else:
            assert values[p.name] == p.value, p.name
    report(
        "poison records via kcat",
        injected=[p.name for p in expected],
        refused_by_kcat=by_client.stderr.strip().splitlines()[-1],
        refused_by_broker=by_broker.stderr.strip().splitlines()[-1],
        near_limit_value_bytes=len(near.value or b""),
        reasons={p.name: letters[p.name]["dlq_reason"].decode() for p in expected},
        healthz_samples=f"{len(health)} (all 200), slowest {max(latency):.2f} s",
        deadlettered_metric=deadlettered,
    )
    result = await reconcile(wait_s=30, base=fault_env.env())
    assert result.code == 0, result.out
    assert f"{len(expected)} skipped" in result.out
