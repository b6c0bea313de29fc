"""The HTTP sender against a fake transport: retries keep the Idempotency-Key, Retry-After is
honoured (with a fake sleep: no real waiting), 4xx bugs are logged and not retried."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from services.simulator.model import IntendedReport, Service
from services.simulator.sender import RetryPolicy, Sender, parse_retry_after

AT = datetime(2026, 11, 27, 10, tzinfo=UTC)


def report(event: str = "visit.started", **body: object) -> IntendedReport:
    return IntendedReport(
        at=AT,
        lane="halmtorv",
        seq=0,
        event=event,
        principal="halmtorv",
        body={"facility_id": "halmtorv", "occurred_at": AT.isoformat(), **body},
        visit_ref="halmtorv/1" if event == "visit.started" else None,
        needs_visit="halmtorv/1" if event == "visit.ended" else None,
    )


class Fake:
    """A scripted server: answers in order, records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def sender(self, policy: RetryPolicy | None = None) -> Sender:
        transport = httpx.MockTransport(self.handler)
        client = httpx.AsyncClient(transport=transport, base_url="http://intake")
        return Sender(
            {Service.INTAKE: client},
            {"halmtorv": "secret-token"},
            policy=policy or RetryPolicy(),
            sleep=self.sleep,
            jitter=lambda: 1.0,
        )


def accepted(**extra: object) -> httpx.Response:
    return httpx.Response(202, json={"event_id": "e", "type": "t", **extra})


async def test_503_then_202_is_one_event_with_the_same_key_after_retry_after() -> None:
    fake = Fake(
        httpx.Response(503, headers={"Retry-After": "2"}, json={"detail": "Kafka unavailable"}),
        accepted(visit_id="v1"),
    )
    result = await fake.sender().send(report(), "sim-run-halmtorv-0")
    assert result.accepted and result.attempts == 2 and result.retries == 1
    assert result.response["visit_id"] == "v1"
    assert fake.sleeps == [2.0]
    keys = {r.headers["Idempotency-Key"] for r in fake.requests}
    bodies = {r.content for r in fake.requests}
    assert keys == {"sim-run-halmtorv-0"} and len(bodies) == 1 and len(fake.requests) == 2
    assert fake.requests[0].headers["Authorization"] == "Bearer secret-token"
    assert fake.requests[0].url.path == "/v1/visits"


async def test_connection_errors_and_5xx_are_retried_with_backoff() -> None:
    fake = Fake(
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(500),
        httpx.Response(429),
        accepted(),
    )
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=1.5)
    result = await fake.sender(policy).send(report(), "k")
    assert result.accepted and result.attempts == 5
    assert fake.sleeps == [0.5, 1.0, 1.5, 1.5]
    assert {r.headers["Idempotency-Key"] for r in fake.requests} == {"k"}


async def test_a_long_retry_after_is_capped() -> None:
    fake = Fake(httpx.Response(503, headers={"Retry-After": "3600"}), accepted())
    await fake.sender(RetryPolicy(max_retry_after_s=30)).send(report(), "k")
    assert fake.sleeps == [30.0]


async def test_a_422_is_a_bug_logged_with_its_field_and_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detail = [{"loc": ["body", "occurred_at"], "msg": "is in the future", "type": "value_error"}]
    fake = Fake(httpx.Response(422, json={"detail": detail}))
    sender = fake.sender()
    with caplog.at_level(logging.ERROR):
        result = await sender.send(report(client_code="HT-0042"), "k")
    assert not result.accepted and result.status == 422 and result.attempts == 1
    assert result.error == "occurred_at: is in the future"
    assert "422" in caplog.text and "occurred_at: is in the future" in caplog.text
    assert "HT-0042" not in caplog.text  # bodies are never logged
    assert fake.sleeps == []
    # The same refusal again is counted by the caller but not logged again.
    fake.answers.append(httpx.Response(422, json={"detail": detail}))
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        await sender.send(report(), "k2")
    assert caplog.text == ""


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413])
async def test_other_4xx_are_not_retried(status: int) -> None:
    fake = Fake(httpx.Response(status, json={"detail": "no"}))
    result = await fake.sender().send(report(), "k")
    assert not result.accepted and result.status == status and fake.sleeps == []


async def test_the_visit_id_is_added_to_the_body() -> None:
    fake = Fake(accepted())
    result = await fake.sender().send(report("visit.ended"), "k", visit_id="abc123")
    assert result.accepted
    assert json.loads(fake.requests[0].content)["visit_id"] == "abc123"
    assert fake.requests[0].url.path == "/v1/visits/end"


async def test_replays_are_reported() -> None:
    fake = Fake(httpx.Response(202, json={}, headers={"Idempotent-Replayed": "true"}))
    assert (await fake.sender().send(report(), "k")).replayed


def test_retry_after_parsing() -> None:
    now = datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now) == pytest.approx(30.0)


def test_backoff_honours_retry_after_but_grows_past_it() -> None:
    policy = RetryPolicy(base_delay_s=1, max_delay_s=16, max_retry_after_s=60)
    delay: Callable[[int], float] = lambda n: policy.delay(n, 2.0)  # noqa: E731
    assert [delay(n) for n in (1, 2, 3, 4, 5, 6)] == [2, 2, 4, 8, 16, 16]
