"""Fixtures of the notifier tests: an isolated database and topic prefix, a real SMTP server
(the project's mail sink) and a real webhook receiver, named in a contacts file of the test's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from harness.isolation import settings_variables
from services.incident.settings import AlertSettings, NotifySettings
from services.incident.workers import IncidentConfig
from shared.contacts import ContactsSettings
from shared.settings import Environment
from tests.integration.ingest.conftest import bearer
from tests.integration.ingest.test_drug_alerts import overdose
from tests.integration.notify.receivers import SECRET, WebhookReceiver, mail_sink, write_contacts
from tests.support import TestEnv, isolated_env


@dataclass
class NotifyEnv:
    """An isolated environment whose incident service notifies the test's receivers: apps get
    :meth:`incident`, child processes :meth:`child_env` (the same settings as variables)."""

    env: TestEnv
    mail_dir: Path
    webhook: WebhookReceiver
    recipients: dict[str, dict[str, str]]
    smtp_port: int
    contacts: Path

    def incident(self, **rule: Any) -> IncidentConfig:
        """The incident app's settings: the notifier on, sending to the test's receivers
        quickly; the alert rule's defaults but ``rule``, with a short reconnect pause."""
        return replace(
            self.env.incident(),
            alerts=AlertSettings(retry_s=0.3, **rule),
            notify=NotifySettings(
                DCR_ENV=Environment.TEST,
                enabled=True,
                smtp_port=self.smtp_port,
                webhook_secret=SecretStr(SECRET),
                backoff_s=0.2,
                poll_s=0.1,
                lease_s=2,
            ),
            contacts=ContactsSettings(file=self.contacts),
        )

    def child_env(self) -> dict[str, str]:
        """The environment of an incident process configured like :meth:`incident`."""
        config = self.incident()
        return self.env.env(**settings_variables(config.alerts, config.notify, config.contacts))

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
    test_env: TestEnv, tmp_path: Path, webhook: WebhookReceiver
) -> AsyncIterator[NotifyEnv]:
    mail_dir, contacts = tmp_path / "mail", tmp_path / "contacts.yaml"
    recipients = write_contacts(contacts, webhook.url)
    with mail_sink(mail_dir) as smtp_port:
        async with isolated_env(test_env, label="notify", drop_topics=True) as env:
            yield NotifyEnv(env, mail_dir, webhook, recipients, smtp_port, contacts)


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
