"""Fault: an ingest service (intake, a real process) is SIGKILLed while requests are in flight.

Clients whose request died with the connection retry with the same Idempotency-Key once the
service is back (same port): each key yields exactly one event id; the topic holds exactly those
ids (a record may appear twice under one id if the kill fell between Kafka's ack and the key
being marked published: consumers count it once); reports answered 202 before the kill replay
the same answer; reconciliation agrees after the projection applied the topic.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.projection.app import create_app as projection_app
from shared.kafka.topics import VISITS
from tests.faults.conftest import reconcile, report
from tests.integration.projection.harness import wait_caught_up
from tests.process import INTAKE_APP, ServiceProcess
from tests.support import TestEnv, poll_until, read_topic, serve

pytestmark = pytest.mark.integration

FACILITIES = ["halmtorv", "maendenes-hjem", "nordvest", "sydhavn", "amager"]


# heavy (make test-faults): whether the SIGKILL lands while requests are mid-flight depends on
# timing; on a cold machine it once hit none and the injection check failed. Until the injection
# is made deterministic it runs in the fault suite, not in make test.
@pytest.mark.heavy
async def test_intake_killed_mid_request_then_retries_give_one_event_per_key(
    fault_env: TestEnv, tmp_path: Path
) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    requests = []
    for i in range(300):
        facility = rng.choice(FACILITIES)
        body = {
            "facility_id": facility,
            "occurred_at": (now - timedelta(minutes=rng.randint(1, 300))).isoformat(),
            "reason": rng.choice(["capacity", "closed", "other"]),
        }
        requests.append((f"kill-{i}", facility, body))
    answers: dict[str, list[str]] = {key: [] for key, _, _ in requests}
    event_ids: dict[str, set[str]] = {key: set() for key, _, _ in requests}

    intake = ServiceProcess(tmp_path, "intake", INTAKE_APP).start()
    try:
        await intake.wait_healthy(timeout=60)
        limit = asyncio.Semaphore(60)

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

        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as client:
            burst = asyncio.gather(*(post(client, k, f, b) for k, f, b in requests))

            async def some_accepted() -> bool:
                return sum("202" in a for a in answers.values()) >= 10

            await poll_until(some_accepted, timeout=60, interval=0.005, what="first answers")
            intake.kill9()  # with requests still in flight
            await burst
            first = Counter(a[0] for a in answers.values())

            intake = intake.restarted().start()
            await intake.wait_healthy(timeout=60)
            # every client retries with the same key: those that lost the connection and, to
            # check the replay, those that already had their 202
            await asyncio.gather(*(post(client, k, f, b) for k, f, b in requests))
    finally:
        intake.terminate()

    # some were answered before the kill, some died with their connection mid-request (sent,
    # no answer), the rest could not connect until the restart
    mid_request = sum(n for a, n in first.items() if a not in ("202", "ConnectError"))
    assert first["202"] >= 10 and mid_request > 0, first
    assert all(a[-1] == "202" for a in answers.values()), Counter(a[-1] for a in answers.values())
    assert all(len(ids) == 1 for ids in event_ids.values()), "a key answered two event ids"
    final_ids = {next(iter(ids)) for ids in event_ids.values()}
    assert len(final_ids) == len(requests)

    records = await read_topic(fault_env.bootstrap, fault_env.topic(VISITS))
    per_id = Counter(r.headers["ce_id"].decode() for r in records)
    assert set(per_id) == final_ids, "the topic holds other events than the answered ones"
    report(
        "intake SIGKILLed with requests in flight",
        requests=len(requests),
        first_answers=dict(first),
        after_retry=dict(Counter(a[-1] for a in answers.values())),
        records_on_topic=len(records),
        distinct_event_ids=len(per_id),
        ids_published_twice=sum(n > 1 for n in per_id.values()),
    )

    async with serve(projection_app()):
        await wait_caught_up(fault_env.dsn, fault_env.bootstrap, fault_env.topic_prefix)
        done = await reconcile(wait_s=30)
    assert done.code == 0, done.out
    assert f"{len(requests)} unique usable event(s)" in done.out
