"""The notifier: every drug alert event reaches every recipient of its district, exactly once in
effect (see :mod:`services.incident.delivery_store`).

Two loops, in every incident instance that has ``DCR_NOTIFY_ENABLED`` (the log makes that safe):

* **enqueue**: consumes ``dcr.alerts`` (group: topic prefix + ``DCR_NOTIFY_CONSUMER_GROUP``;
  ``dk.dcr.alert.raised``, ``acknowledged``, ``resolved``), renders the message once
  (:func:`services.incident.notification.render`) and stores one delivery per recipient of the
  district (:meth:`shared.contacts.Contacts.for_district`) and channel (e-mail, webhook) **before**
  committing the offset: a crash re-reads the event and the log ignores the repeat;
* **deliver**: claims due deliveries under a lease, sends, records the outcome; a failure is
  retried after ``backoff_s * 2^(attempt-1)`` (capped), and is dead after ``max_attempts``.

Why a worker in the incident service rather than a process of its own: the incident service
already owns the alerts (it raises, acknowledges and resolves them), has the Kafka and PostgreSQL
clients, a ``/healthz`` and ``/metrics`` on 8003, and runs as several instances; the delivery log
makes concurrent notifiers safe, so no extra process, port or leader is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from uuid import UUID

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter, Gauge, Histogram

from services.incident.delivery_store import Delivery, DeliveryStore
from services.incident.notification import ALERT_TYPES, Message, delivery_id, render
from services.incident.senders import EmailSender, SendError, WebhookSender
from services.incident.settings import NotifySettings
from shared.bootstrap import running
from shared.city import City
from shared.contacts import Contacts, load_contacts
from shared.events.envelope import DecodeError, Envelope, decode
from shared.ingest.app import Runtime
from shared.kafka.security import client_kwargs
from shared.kafka.topics import ALERTS
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


class Sender(Protocol):
    async def send(self, address: str, message: Message, delivery_id: UUID) -> None: ...


DELIVERIES = Counter(
    "dcr_alert_deliveries",
    "Drug alert notification attempts by outcome (delivered, retry, dead)",
    ["channel", "outcome"],
)
IN_STATE = Gauge(
    "dcr_alert_deliveries_in_state",
    "Rows of the notifier's delivery log per state (pending, delivered, dead)",
    ["state"],
)
for _state in ("pending", "delivered", "dead"):
    IN_STATE.labels(_state)  # exported (0) from the start, also where the notifier is disabled
LATENCY = Histogram(
    "dcr_alert_delivery_seconds",
    "From an alert event being stored for delivery to its receiver accepting it",
    ["channel"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
HEARTBEAT = Gauge(
    "dcr_notifier_heartbeat_timestamp_seconds", "Last time the notifier's delivery loop ran"
)


class Notifier:
    def __init__(
        self,
        *,
        city: City,
        contacts: Contacts,
        store: DeliveryStore,
        email: Sender,
        webhook: Sender,
        kafka: KafkaSettings,
        settings: NotifySettings,
    ) -> None:
        self._city = city
        self._contacts = contacts
        self._store = store
        self._senders: dict[str, Sender] = {"email": email, "webhook": webhook}
        self._kafka = kafka
        self._s = settings
        self._heartbeat = time.monotonic()

    def deliveries_for(self, env: Envelope) -> list[Delivery]:
        """One delivery per recipient of the alert's district and channel it has."""
        district = getattr(env.data, "district", None)
        if district is None:
            return []
        message = render(env, self._city, self._s.dashboard_url).as_json()
        out = []
        for r in self._contacts.for_district(district, self._city):
            for channel, address in (("email", r.email), ("webhook", r.webhook)):
                if address is not None:
                    out.append(
                        Delivery(
                            env.id,
                            r.id,
                            channel,
                            delivery_id(env.id, r.id, channel),
                            address,
                            message,
                            env.time,
                            0,
                            env.time,
                        )
                    )
        return out

    async def enqueue(self, headers: Iterable[tuple[str, bytes]], value: bytes | None) -> int:
        try:
            env = decode(headers, value)
        except DecodeError as exc:
            log.warning("notifier: skipping an undecodable alert record: %s", exc.reason)
            return 0
        if env.type not in ALERT_TYPES:
            return 0
        return await self._store.enqueue(self.deliveries_for(env))

    async def consume(self) -> None:
        consumer = AIOKafkaConsumer(
            self._kafka.topic(ALERTS),
            **client_kwargs(self._kafka),
            group_id=self._kafka.topic_prefix + self._s.consumer_group,
            client_id="dcr-notifier",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, records in batch.items():
                    for record in records:
                        await self.enqueue(record.headers, record.value)
                    await consumer.commit({tp: records[-1].offset + 1})
        finally:
            await consumer.stop()

    def backoff(self, attempts: int) -> float:
        return float(min(self._s.backoff_max_s, self._s.backoff_s * 2 ** (attempts - 1)))

    async def deliver_due(self) -> int:
        """Send every due delivery once; return how many were attempted."""
        due = await self._store.claim(20, self._s.lease_s)
        for d in due:
            message = Message(**d.message)
            try:
                await self._senders[d.channel].send(d.address, message, d.delivery_id)
            except SendError as exc:
                dead = d.attempts >= self._s.max_attempts
                await self._store.failed(d, str(exc), None if dead else self.backoff(d.attempts))
                DELIVERIES.labels(d.channel, "dead" if dead else "retry").inc()
                log.warning(
                    "notifier: %s to %s failed (%s), attempt %d%s",
                    d.channel,
                    d.recipient,
                    exc,
                    d.attempts,
                    ": dead" if dead else "",
                )
                continue
            await self._store.delivered(d)
            DELIVERIES.labels(d.channel, "delivered").inc()
            LATENCY.labels(d.channel).observe((datetime.now(UTC) - d.created_at).total_seconds())
        return len(due)

    async def deliver(self) -> None:
        while True:
            self._heartbeat = time.monotonic()
            HEARTBEAT.set_to_current_time()
            attempted = await self.deliver_due()
            counts = await self._store.counts()
            for state in ("pending", "delivered", "dead"):
                IN_STATE.labels(state).set(counts.get(state, 0))
            if not attempted:
                await asyncio.sleep(self._s.poll_s)

    def alive(self) -> bool:
        return time.monotonic() - self._heartbeat < max(30.0, 10 * self._s.poll_s)

    async def run(self, retry_s: float) -> None:
        """Both loops until cancelled; a failure (Kafka, PostgreSQL) restarts them."""
        while True:
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self.consume())
                    tg.create_task(self.deliver())
            except Exception as exc:  # any failure: log, pause, start again
                log.warning("notifier stopped (%r); restarting in %.1f s", exc, retry_s)
            await asyncio.sleep(retry_s)


@contextlib.asynccontextmanager
async def run_notifier(
    rt: Runtime, settings: NotifySettings, retry_s: float, contacts_file: Path
) -> AsyncIterator[Notifier]:
    """Run a :class:`Notifier` for the incident app's lifetime on the app's PostgreSQL pool;
    after a failure its loops restart every ``retry_s`` seconds."""
    city = rt.deps.city
    contacts = load_contacts(contacts_file, city)
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_s) as client:
        notifier = Notifier(
            city=city,
            contacts=contacts,
            store=DeliveryStore(rt.pool),
            email=EmailSender(settings),
            webhook=WebhookSender(settings, client),
            kafka=rt.platform.kafka,
            settings=settings,
        )
        async with running(notifier.run(retry_s), "notifier"):
            yield notifier
