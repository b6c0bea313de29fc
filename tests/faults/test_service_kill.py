"""Fault: an ingest service (intake, a real process) is SIGKILLed while requests are in flight.

The kill is deterministic: intake runs through a test-only composition root
(:mod:`tests.faults.held_intake`) that lets the first ``PASS`` publishes through and then holds
every request in flight, half of them before publishing and half after Kafka's ack (before the
key is marked published). The test kills the process once all ``CONCURRENCY`` client slots are
held, so it knows what it interrupts: ``PASS`` answered, ``CONCURRENCY`` mid-request, the rest
unable to connect.

Clients retry with the same Idempotency-Key once the service is back (same port, the plain
intake app): each key yields exactly one event id; the topic holds exactly those ids, the ones
held after the ack twice under the same id (consumers count it once); reports answered 202
before the kill replay the same answer; reconciliation agrees after the projection applied the
topic.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from harness.process import INTAKE_APP, ServiceProcess
from services.projection.app import create_app as projection_app
from shared.kafka.topics import VISITS
from tests.faults.conftest import reconcile, report
from tests.faults.held_intake import HOLD_DIR, HOLD_PASS
from tests.integration.projection.harness import wait_caught_up
from tests.support import TestEnv, poll_until, read_topic, serve

pytestmark = pytest.mark.integration

HELD_INTAKE_APP = "tests.faults.held_intake:create_app"
FACILITIES = ["halmtorv", "maendenes-hjem", "nordvest", "sydhavn", "amager"]


PASS = 10  # publishes let through before the holding starts
CONCURRENCY = 60  # client requests in flight at most: all of them held at the kill
REQUESTS = 300


async def test_intake_killed_mid_request_then_retries_give_one_event_per_key(
    fault_env: TestEnv, tmp_path: Path
) -> None:
    rng = random.Random(7)
    # 1-300 minutes ago: within the 30-day horizon and not in the future, on any day and hour
    now = datetime.now(UTC)
    requests = []
    for i in range(REQUESTS):
        facility = rng.choice(FACILITIES)
        body = {
            "facility_id": facility,
            "occurred_at": (now - timedelta(minutes=rng.randint(1, 300))).isoformat(),
            "reason": rng.choice(["capacity", "closed", "other"]),
        }
        requests.append((f"kill-{i}", facility, body))
    answers: dict[str, list[str]] = {key: [] for key, _, _ in requests}
    event_ids: dict[str, set[str]] = {key: set() for key, _, _ in requests}

    held_dir = tmp_path / "held"
    held_dir.mkdir()
    holding = {HOLD_DIR: str(held_dir), HOLD_PASS: str(PASS)}
    intake = ServiceProcess(
        tmp_path, "intake", HELD_INTAKE_APP, env=holding, base=fault_env.env()
    ).start()
    try:
        await intake.wait_healthy(timeout=60)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def post(
            client: httpx.AsyncClient, key: str, facility: str, body: dict[str, str]
        ) -> None:
            headers = {
                "Authorization": f"Bearer {fault_env.tokens[facility]}",
                "Idempotency-Key": key,
            }
            async with limit:
                try:
                    r = await client.post(
                        f"{intake.url}/v1/refusals", json=body, headers=headers, timeout=30
                    )
                except httpx.TransportError as exc:
                    answers[key].append(type(exc).__name__)
                    return
            answers[key].append(str(r.status_code))
            if r.status_code == 202:
                event_ids[key].add(r.json()["event_id"])

        # no keep-alive: after the kill, a waiting request opens a new connection and fails
        # to connect (ConnectError) instead of maybe reusing one to the dead process
        no_reuse = httpx.Limits(max_connections=100, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=no_reuse) as client:
            burst = asyncio.gather(*(post(client, k, f, b) for k, f, b in requests))

            async def all_slots_held() -> bool:
                return len(list(held_dir.iterdir())) == CONCURRENCY

            await poll_until(all_slots_held, timeout=60, what=f"{CONCURRENCY} requests held")
            intake.kill9()  # with CONCURRENCY requests in flight
            await burst
            first = Counter(a[0] for a in answers.values())
            held: dict[str, set[str]] = {"before": set(), "after": set()}
            for announced in held_dir.iterdir():
                stage, event_id = announced.name.split("-", 1)
                held[stage].add(event_id)

            intake = ServiceProcess(
                tmp_path, "intake", INTAKE_APP, port=intake.port, base=fault_env.env()
            ).start()
            await intake.wait_healthy(timeout=60)
            # every client retries with the same key: those that lost the connection and, to
            # check the replay, those that already had their 202
            await asyncio.gather(*(post(client, k, f, b) for k, f, b in requests))
    finally:
        intake.terminate()

    # the PASS let through were answered; every slot held died with its connection (sent, no
    # answer); the rest could not connect until the restart
    mid_request = sum(n for a, n in first.items() if a not in ("202", "ConnectError"))
    assert first["202"] == PASS and mid_request == CONCURRENCY, first
    assert first["ConnectError"] == REQUESTS - PASS - CONCURRENCY, first
    assert {k: len(v) for k, v in held.items()} == {
        "before": CONCURRENCY // 2,
        "after": CONCURRENCY // 2,
    }
    assert all(a[-1] == "202" for a in answers.values()), Counter(a[-1] for a in answers.values())
    assert all(len(ids) == 1 for ids in event_ids.values()), "a key answered two event ids"
    final_ids = {next(iter(ids)) for ids in event_ids.values()}
    assert len(final_ids) == len(requests)
    # a held request's retry answers the event id claimed before the kill
    assert held["before"] | held["after"] <= final_ids

    records = await read_topic(fault_env.bootstrap, fault_env.topic(VISITS))
    per_id = Counter(r.headers["ce_id"].decode() for r in records)
    assert set(per_id) == final_ids, "the topic holds other events than the answered ones"
    # acked before the kill and published again on retry: the same id twice; all else once
    assert {i for i, n in per_id.items() if n > 1} == held["after"]
    assert max(per_id.values()) == 2
    report(
        "intake SIGKILLed with requests in flight",
        requests=len(requests),
        first_answers=dict(first),
        after_retry=dict(Counter(a[-1] for a in answers.values())),
        records_on_topic=len(records),
        distinct_event_ids=len(per_id),
        ids_published_twice=sum(n > 1 for n in per_id.values()),
    )

    async with serve(projection_app(fault_env.projection())):
        await wait_caught_up(fault_env.dsn, fault_env.bootstrap, fault_env.topic_prefix)
        done = await reconcile(wait_s=30, base=fault_env.env())
    assert done.code == 0, done.out
    assert f"{len(requests)} unique usable event(s)" in done.out
