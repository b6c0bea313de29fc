"""Hostile input: requests without a valid token, or with a token that may not report this.

Against the three ingest apps in-process with the real Kafka and PostgreSQL: no token, a token of
another scheme, a wrong token, the token's own digest, another facility's token, a sanitation
token on a facility route and a facility token on the sanitation route are all refused (401/403
with a message, 401 with ``WWW-Authenticate``), publish nothing, and are counted in
``dcr_auth_failures_total{service, reason}`` (read from the ``/metrics`` exposition).

Constant time: the registry compares the presented token's digest with every principal's digest
through ``hmac.compare_digest``, whoever matches (checked by counting the calls, not by timing).
"""

from __future__ import annotations

import hmac
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.incident.app import create_app as create_incident
from services.intake.app import create_app as create_intake
from services.supply.app import create_app as create_supply
from shared.auth import Principal, PrincipalKind, TokenRegistry, digest
from tests.faults.conftest import report
from tests.integration.projection.harness import end_offsets
from tests.support import TestEnv, auth_failures, scrape_auth, serve

pytestmark = pytest.mark.integration


def _at() -> str:
    return (datetime.now(UTC) - timedelta(minutes=3)).isoformat()


async def test_every_unauthorised_request_is_refused_counted_and_publishes_nothing(
    fault_env: TestEnv,
) -> None:
    tokens = fault_env.tokens
    digest_of_halmtorv = digest(tokens["halmtorv"])
    refusal = {"facility_id": "halmtorv", "occurred_at": _at(), "reason": "capacity"}
    sharps = {"facility_id": "halmtorv", "occurred_at": _at(), "count": 3}
    street = {"district": "vesterbro", "area": "Skelbækgade", "occurred_at": _at(), "count": 2}
    incident = {
        "facility_id": "halmtorv",
        "occurred_at": _at(),
        "kind": "opioid_overdose",
        "severity": "severe",
        "life_threatening": True,
        "outcome": "recovered_on_site",
    }

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    basic = {"Authorization": "Basic aGFsbXRvcnY6eA=="}
    sanitation = bearer(tokens["sanitation-city"])

    # (service, path, body, headers, status, reason counted)
    cases: list[tuple[str, str, dict[str, Any], dict[str, str], int, str]] = [
        ("intake", "/v1/refusals", refusal, {}, 401, "missing"),
        ("intake", "/v1/refusals", refusal, basic, 401, "missing"),
        ("intake", "/v1/refusals", refusal, {"Authorization": "Bearer"}, 401, "missing"),
        ("intake", "/v1/refusals", refusal, bearer("not-a-token"), 401, "invalid"),
        ("intake", "/v1/refusals", refusal, bearer(""), 401, "invalid"),
        ("intake", "/v1/refusals", refusal, bearer(digest_of_halmtorv), 401, "invalid"),
        ("intake", "/v1/refusals", refusal, bearer(tokens["halmtorv"] + "x"), 401, "invalid"),
        ("intake", "/v1/refusals", refusal, bearer(tokens["nordvest"]), 403, "forbidden"),
        ("intake", "/v1/refusals", refusal, sanitation, 403, "forbidden"),
        ("supply", "/v1/sharps/returned", sharps, {}, 401, "missing"),
        ("supply", "/v1/sharps/returned", sharps, bearer("x" * 5000), 401, "invalid"),
        ("supply", "/v1/sharps/returned", sharps, bearer(tokens["amager"]), 403, "forbidden"),
        ("supply", "/v1/sharps/returned", sharps, sanitation, 403, "forbidden"),
        ("supply", "/v1/street-needles", street, bearer(tokens["halmtorv"]), 403, "forbidden"),
        ("supply", "/v1/street-needles", street, bearer("wrong"), 401, "invalid"),
        ("supply", "/v1/street-needles", street, {}, 401, "missing"),
        ("incident", "/v1/incidents", incident, bearer(tokens["sydhavn"]), 403, "forbidden"),
        ("incident", "/v1/incidents", incident, sanitation, 403, "forbidden"),
        ("incident", "/v1/incidents", incident, {}, 401, "missing"),
    ]  # fmt: skip
    before_topics = await end_offsets(fault_env.bootstrap, fault_env.topic_prefix)
    apps = {
        "intake": create_intake(config=fault_env.ingest()),
        "supply": create_supply(config=fault_env.ingest()),
        "incident": create_incident(config=fault_env.incident()),
    }
    answered: list[str] = []
    async with (
        serve(apps["intake"]) as intake,
        serve(apps["supply"]) as supply,
        serve(apps["incident"]) as incident_client,
    ):
        clients: dict[str, httpx.AsyncClient] = {
            "intake": intake,
            "supply": supply,
            "incident": incident_client,
        }
        before = auth_failures((await intake.get("/metrics", headers=scrape_auth(fault_env))).text)
        for service, path, body, headers, status, _ in cases:
            r = await clients[service].post(path, json=body, headers=headers)
            assert r.status_code == status, (service, path, headers.keys(), r.text)
            detail = r.json()["detail"]
            assert isinstance(detail, str) and detail, r.text
            if status == 401:
                assert r.headers["WWW-Authenticate"] == "Bearer"
            answered.append(f"{service}{path} {status} {detail}")
        after = auth_failures((await intake.get("/metrics", headers=scrape_auth(fault_env))).text)
        # the right ones still get through (so the refusals above were about the token)
        ok = await intake.post("/v1/refusals", json=refusal, headers=bearer(tokens["halmtorv"]))
        assert ok.status_code == 202, ok.text
        ok = await supply.post(
            "/v1/street-needles", json=street, headers=bearer(tokens["sanitation-city"])
        )
        assert ok.status_code == 202, ok.text

    expected = Counter((service, reason) for service, _, _, _, _, reason in cases)
    counted = after - before
    assert counted == expected, (counted, expected)
    after_topics = await end_offsets(fault_env.bootstrap, fault_env.topic_prefix)
    published = sum(after_topics.values()) - sum(before_topics.values())
    assert published == 2, "a refused request published something"
    report(
        "authentication and authorisation refusals",
        requests=len(cases),
        answers=answered,
        dcr_auth_failures_total_delta=dict(counted),
    )


def test_tokens_are_compared_in_constant_time_over_every_principal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    principals = tuple(
        Principal(id=f"p{i}", kind=PrincipalKind.FACILITY, token_sha256=digest(f"token-{i}"))
        for i in range(7)
    )
    registry = TokenRegistry(principals)
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)  # what shared.auth calls
    for token, owner in [
        ("token-0", "p0"),
        ("token-6", "p6"),
        ("nobody", None),
        ("", None),
        ("x" * 10_000, None),
    ]:
        calls.clear()
        found = registry.authenticate(token)
        assert (found.id if found else None) == owner
        # every principal compared, whoever matched, always on 64-byte digests
        assert calls == [(64, 64)] * len(principals), (token[:10], calls)
