"""Fixtures of the notifier tests: an isolated database and topic prefix, a real SMTP server
(the project's mail sink) and a real webhook receiver, named in a contacts file of the test's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.integration.ingest.conftest import bearer
from tests.integration.ingest.test_drug_alerts import overdose
from tests.integration.notify.receivers import SECRET, WebhookReceiver, mail_sink, write_contacts
from tests.support import TestEnv, isolated_env


@dataclass
class NotifyEnv:
    env: TestEnv
    mail_dir: Path
    webhook: WebhookReceiver
    recipients: dict[str, dict[str, str]]

    async def delivery_states(self) -> dict[str, int]:
        conn = await asyncpg.connect(self.env.dsn)
        try:
            rows = await conn.fetch("SELECT state, count(*) AS n FROM alert_deliveries GROUP BY 1")
        finally:
            await conn.close()
        return {r["state"]: r["n"] for r in rows}

    async def all_delivered(self, expected: int) -> bool:
        return await self.delivery_states() == {"delivered": expected}


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver().running() as receiver:
        yield receiver


@pytest.fixture
async def notify_env(
    test_env: TestEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, webhook: WebhookReceiver
) -> AsyncIterator[NotifyEnv]:
    mail_dir = tmp_path / "mail"
    recipients = write_contacts(tmp_path / "contacts.yaml", webhook.url)
    with mail_sink(mail_dir) as smtp_port:
        for name, value in {
            "DCR_NOTIFY_ENABLED": "true",
            "DCR_NOTIFY_SMTP_PORT": str(smtp_port),
            "DCR_NOTIFY_WEBHOOK_SECRET": SECRET,
            "DCR_CONTACTS_FILE": str(tmp_path / "contacts.yaml"),
            "DCR_NOTIFY_BACKOFF_S": "0.2",
            "DCR_NOTIFY_POLL_S": "0.1",
            "DCR_NOTIFY_LEASE_S": "2",
            "DCR_ALERTS_RETRY_S": "0.3",
        }.items():
            monkeypatch.setenv(name, value)
        async with isolated_env(test_env, monkeypatch, label="notify", drop_topics=True) as env:
            yield NotifyEnv(env, mail_dir, webhook, recipients)


async def post_overdoses(
    client: httpx.AsyncClient, env: TestEnv, reports: Sequence[tuple[str, float]]
) -> list[str]:
    """Post an overdose per ``(facility, minutes ago)`` with that facility's token (202); the
    reports' event ids."""
    ids = []
    for facility, minutes_ago in reports:
        r = await client.post(
            "/v1/incidents", json=overdose(facility, minutes_ago), headers=bearer(env, facility)
        )
        assert r.status_code == 202, r.text
        ids.append(str(r.json()["event_id"]))
    return ids
