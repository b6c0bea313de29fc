"""``POST /v1/batch`` (NDJSON): one result per line, through the single-event path, in order."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.ingest.conftest import Harness, ago, bearer


def ndjson(*lines: dict[str, Any] | str) -> str:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)


def visit(key: str, code: str = "HT-0042", facility: str = "halmtorv") -> dict[str, Any]:
    body = {
        "facility_id": facility,
        "occurred_at": ago(5),
        "client_code": code,
        "substances": ["heroin"],
        "route": "inject",
    }
    return {"route": "/visits", "idempotency_key": key, "body": body}


async def post(h: Harness, text: str, principal: str = "halmtorv") -> list[dict[str, Any]]:
    r = await h.client.post("/v1/batch", content=text, headers=bearer(principal))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines()]


async def test_each_line_gets_its_own_result_and_its_own_event_in_order(intake: Harness) -> None:
    results = await post(intake, ndjson(visit("k1", "HT-0001"), visit("k2", "HT-0002")))
    assert [(r["line"], r["status"]) for r in results] == [(1, 202), (2, 202)]
    assert all(r["body"]["visit_id"] for r in results)
    published = [e.data.visit_id for e in intake.publisher.published]  # type: ignore[attr-defined]
    assert published == [r["body"]["visit_id"] for r in results]


async def test_replaying_a_batch_publishes_nothing_new_and_answers_the_same(
    intake: Harness,
) -> None:
    text = ndjson(visit("k1", "HT-0001"), visit("k2", "HT-0002"))
    first = await post(intake, text)
    again = await post(intake, text)
    assert again == first
    assert len(intake.publisher.published) == 2


async def test_bad_lines_get_a_4xx_naming_the_field_and_do_not_stop_the_rest(
    intake: Harness,
) -> None:
    bad_body = visit("k2")
    bad_body["body"]["route"] = "teleport"
    results = await post(
        intake,
        ndjson(
            "not json",
            {"route": "/nowhere", "body": {}},
            bad_body,
            visit("k4", facility="nordvest"),
            visit("k5"),
        ),
    )
    assert [r["status"] for r in results] == [422, 404, 422, 403, 202]
    assert results[2]["body"][0]["loc"] == ["body", "route"]
    assert "teleport" not in json.dumps(results)  # submitted values are not echoed
    assert len(intake.publisher.published) == 1


async def test_after_a_503_the_rest_is_not_attempted_so_order_is_kept(intake: Harness) -> None:
    intake.publisher.fail = True
    results = await post(intake, ndjson(visit("k1", "HT-0001"), visit("k2", "HT-0002")))
    assert [r["status"] for r in results] == [503, 503]
    assert "not attempted" in results[1]["body"]
    intake.publisher.fail = False
    results = await post(intake, ndjson(visit("k1", "HT-0001"), visit("k2", "HT-0002")))
    assert [r["status"] for r in results] == [202, 202]
    assert len(intake.publisher.published) == 2


async def test_the_token_is_checked_once_for_the_batch(intake: Harness) -> None:
    r = await intake.client.post("/v1/batch", content=ndjson(visit("k1")))
    assert r.status_code == 401
    r = await intake.client.post("/v1/batch", content="\n\n", headers=bearer("halmtorv"))
    assert r.status_code == 422
    assert intake.publisher.published == []


async def test_a_batch_reaches_only_its_own_services_routes(supply: Harness) -> None:
    results = await post(supply, ndjson(visit("k1")))
    assert results[0]["status"] == 404
