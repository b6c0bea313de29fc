"""dcr-sim end to end: a few simulated hours at high speed against the real intake, supply and
incident apps (in-process, on the real Kafka and PostgreSQL). Every report the model produced is
accepted, each one is exactly one record on the session's topics, visit ends carry the visit ids
intake issued, and running the same run again publishes nothing new (idempotent replays).

The plan ends at "now" (the services refuse events from the future or older than 30 days) and
its volume does not depend on the calendar (:func:`~tests.unit.simulator.plans.busy_plan`);
every expectation is derived from the plan itself. ``make test-dates`` runs it as if today were
each awkward date of tests/clock.py."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from services.incident.app import create_app as create_incident
from services.intake.app import create_app as create_intake
from services.simulator.cli import Plan
from services.simulator.model import IntendedReport, Service
from services.simulator.runner import Runner, SimClock
from services.simulator.sender import Result, Sender
from services.supply.app import create_app as create_supply
from shared.events.catalogue import CATALOGUE
from shared.kafka import topics
from tests.support import Record, read_topic, serve
from tests.unit.simulator.plans import busy_plan

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = [pytest.mark.integration, pytest.mark.clock]

TOPICS = (topics.VISITS, topics.SUPPLIES, topics.INCIDENTS)


class RecordingSender(Sender):
    """The real sender, keeping the event id of every accepted report."""

    def __init__(
        self, clients: Mapping[Service, httpx.AsyncClient], tokens: Mapping[str, str]
    ) -> None:
        super().__init__(clients, tokens)
        self.accepted: dict[str, str] = {}  # event id -> CloudEvents type

    async def send(
        self,
        report: IntendedReport,
        key: str,
        visit_id: str | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> Result:
        result = await super().send(report, key, visit_id, on_retry)
        if result.accepted:
            self.accepted[str(result.response["event_id"])] = report.event_type
        return result


@pytest.fixture
async def clients(test_env: TestEnv) -> AsyncIterator[Mapping[Service, httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        yield {
            Service.INTAKE: await stack.enter_async_context(
                serve(create_intake(config=test_env.ingest()))
            ),
            Service.SUPPLY: await stack.enter_async_context(
                serve(create_supply(config=test_env.ingest()))
            ),
            Service.INCIDENT: await stack.enter_async_context(
                serve(create_incident(config=test_env.incident()))
            ),
        }


async def records(env: TestEnv) -> list[Record]:
    out: list[Record] = []
    for topic in TOPICS:
        out += await read_topic(env.bootstrap, env.topic(topic))
    return out


async def run(
    p: Plan, clients: Mapping[Service, httpx.AsyncClient], tokens: Mapping[str, str]
) -> tuple[Runner, RecordingSender]:
    sender = RecordingSender(clients, tokens)
    runner = Runner(p.reports(), sender, SimClock(p.start, p.speed), run_id=p.run_id)
    await asyncio.wait_for(runner.run(asyncio.Event()), 120)
    return runner, sender


async def test_every_simulated_report_is_accepted_and_published_once(
    test_env: TestEnv, clients: Mapping[Service, httpx.AsyncClient]
) -> None:
    p = busy_plan(datetime.now(UTC))
    reports = list(p.reports())
    assert {r.service for r in reports} == set(Service)
    before = {r.headers["ce_id"] for r in await records(test_env)}

    runner, sender = await run(p, clients, test_env.tokens)

    total = runner.stats.total()
    assert total.sent == total.accepted == len(reports), runner.stats.by_event
    assert total.failed == 0 and total.replayed == 0 and total.unsent == 0
    new = [r for r in await records(test_env) if r.headers["ce_id"] not in before]
    assert len(new) == total.accepted
    assert {r.headers["ce_id"].decode(): r.headers["ce_type"].decode() for r in new} == (
        sender.accepted
    )
    by_topic = Counter(r.topic for r in new)
    expected = Counter(test_env.topic(CATALOGUE[t].topic) for t in sender.accepted.values())
    assert by_topic == expected and set(by_topic) == {test_env.topic(t) for t in TOPICS}

    # A visit's end names the visit_id intake issued for its start.
    visits = [r for r in new if r.topic == test_env.topic(topics.VISITS)]
    started = {
        json.loads(r.value or b"")["visit_id"]
        for r in visits
        if r.headers["ce_type"] == b"dk.dcr.visit.started"
    }
    ended = [
        json.loads(r.value or b"")["visit_id"]
        for r in visits
        if r.headers["ce_type"] == b"dk.dcr.visit.ended"
    ]
    assert ended and set(ended) <= started and len(set(ended)) == len(ended)

    # The same run again: every report is an idempotent replay; nothing new is published.
    again, _ = await run(p, clients, test_env.tokens)
    assert again.stats.total().replayed == again.stats.total().accepted == len(reports)
    assert len(await records(test_env)) == len(before) + len(new)
