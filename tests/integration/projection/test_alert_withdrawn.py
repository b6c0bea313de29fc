"""Issue 13, a withdrawn drug alert in the projection's read model (real Kafka and PostgreSQL):
``dk.dcr.alert.withdrawn`` sets state ``withdrawn``, which wins over an acknowledgement or a
resolution whether they come in the same batch, before or after it, and a rebuild reproduces
the live table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from harness.process import run_module
from services.projection.app import create_app as projection_app
from shared.events import payloads as p
from shared.events.envelope import Envelope
from shared.events.vocabulary import AlertReason
from tests.integration.projection.harness import produce, rows, snapshot, wait_caught_up
from tests.support import serve
from tests.unit.projection import factory as f

if TYPE_CHECKING:
    from tests.support import TestEnv

pytestmark = pytest.mark.integration


async def test_withdrawn_wins_over_acknowledged_and_resolved_in_any_batch(
    iso_env: TestEnv,
) -> None:
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    raised = [f.alert(t, f"ep-{i}", alert_id=f"a{i}") for i in range(3)]

    def ack(i: int) -> Envelope:
        data = p.DrugAlertAcknowledged(
            alert_id=f"a{i}", district="vesterbro", acknowledged_by="ops-oncall",
            seconds_to_acknowledge=60.0,
        )  # fmt: skip
        return f.wrap(data, t + timedelta(minutes=1), None, "vesterbro")

    def resolved(i: int) -> Envelope:
        data = p.DrugAlertResolved(
            alert_id=f"a{i}", district="vesterbro", reason=AlertReason.OVERDOSE_CLUSTER,
            episode=f"ep-{i}", last_seen=t, quiet_period_s=7200,
        )  # fmt: skip
        return f.wrap(data, t + timedelta(hours=2), None, "vesterbro")

    def withdrawn(i: int) -> Envelope:
        data = p.DrugAlertWithdrawn(
            alert_id=f"a{i}", district="vesterbro", reason=AlertReason.OVERDOSE_CLUSTER,
            episode=f"ep-{i}", since=t, overdoses_remaining=2, threshold=3,
        )  # fmt: skip
        return f.wrap(data, t + timedelta(minutes=30), None, "vesterbro")

    batches = [
        [*raised, ack(0), withdrawn(0), resolved(0)],  # a0: all in one batch
        [ack(1), withdrawn(1)],  # a1: acknowledged, then withdrawn ...
        [resolved(1), withdrawn(2)],  # ... then resolved; a2: withdrawn first ...
        [ack(2), resolved(2)],  # ... then acknowledged and resolved
    ]
    async with serve(projection_app(iso_env.projection())):
        for batch in batches:
            await produce(iso_env.bootstrap, iso_env.topic_prefix, batch)
            await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
    got = await rows(
        iso_env.dsn,
        "SELECT alert_id, state, withdrawn_at, acknowledged_at IS NOT NULL, "
        "resolved_at IS NOT NULL FROM alerts ORDER BY alert_id",
    )
    at = t + timedelta(minutes=30)
    assert got == [(f"a{i}", "withdrawn", at, True, True) for i in range(3)]

    live = await snapshot(iso_env.dsn, ("alerts",))
    done = await run_module("services.projection.rebuild", base=iso_env.env())
    assert done.code == 0, done.err
    assert await snapshot(iso_env.dsn, ("alerts",)) == live
