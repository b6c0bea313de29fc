"""``POST /v1/batch`` on the real Kafka and PostgreSQL: every accepted line is exactly one record
(with the pseudonym, never the clear code), a replayed batch publishes nothing new, and the
answers of a replay are the first answers (keys stored in PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shared.kafka import topics
from tests.integration.ingest.conftest import at, bearer
from tests.support import read_topic

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration


def line(path: str, key: str, **body: Any) -> str:
    return json.dumps({"route": path, "idempotency_key": key, "body": body}) + "\n"


async def test_a_batch_lands_once_per_line_and_replays_publish_nothing(
    test_env: TestEnv, intake: httpx.AsyncClient
) -> None:
    run = uuid.uuid4().hex[:8]
    code = f"BATCH-{run}"
    text = "".join(
        [
            line(
                "/visits",
                f"{run}-1",
                facility_id="halmtorv",
                occurred_at=at(3),
                client_code=code,
                substances=["heroin"],
                route="inject",
            ),
            line(
                "/refusals",
                f"{run}-2",
                facility_id="halmtorv",
                occurred_at=at(2),
                reason="capacity",
            ),
            line(
                "/refusals", f"{run}-3", facility_id="nordvest", occurred_at=at(1), reason="closed"
            ),
        ]
    )
    headers = {**bearer(test_env, "halmtorv"), "Content-Type": "application/x-ndjson"}
    first = await intake.post("/v1/batch", content=text, headers=headers)
    assert first.status_code == 200
    results = [json.loads(x) for x in first.text.splitlines()]
    assert [x["status"] for x in results] == [202, 202, 403]
    again = await intake.post("/v1/batch", content=text, headers=headers)
    assert [json.loads(x) for x in again.text.splitlines()] == results

    ids = {results[0]["body"]["event_id"], results[1]["body"]["event_id"]}
    records = await read_topic(test_env.bootstrap, test_env.topic(topics.VISITS))
    mine = [r for r in records if r.headers["ce_id"].decode() in ids]
    assert sorted(r.headers["ce_type"].decode() for r in mine) == [
        "dk.dcr.visit.refused",
        "dk.dcr.visit.started",
    ]
    assert all(code.encode() not in (r.value or b"") for r in records)
