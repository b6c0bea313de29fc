"""Kafka adapter of the EventPublisher port, on a FastStream KafkaBroker.

The broker must be created with ``enable_idempotence=True`` and ``acks="all"`` (see
:func:`make_broker`): a publish returns only after every in-sync replica has the record.

A service must start even when Kafka is down (it then answers 503 and ``/healthz`` reports
``kafka: false``) rather than crash-loop: :func:`connected_publisher` yields at once and keeps
connecting in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from shared.bootstrap import close_within
from shared.events.envelope import Envelope, to_headers, to_value
from shared.ingest.ports import PublishError
from shared.kafka.security import faststream_security
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


def make_broker(settings: KafkaSettings, client_id: str) -> KafkaBroker:
    """A broker for publishing: idempotent producer, acks=all. Creates no connection yet.

    FastStream's Prometheus middleware adds ``dcr_faststream_published_messages_*`` metrics
    (labels: app, broker, destination topic; no message content).
    """
    return KafkaBroker(
        settings.bootstrap_list(),
        security=faststream_security(settings),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=int(settings.publish_timeout_s * 1000),
        logger=None,
        middlewares=[
            KafkaPrometheusMiddleware(
                registry=REGISTRY, app_name=client_id, metrics_prefix="dcr_faststream"
            )
        ],
    )


#: Errors after which aiokafka's idempotent producer never works again: its sequence numbers are
#: out of step with the broker's (e.g. a batch expired while the broker was down, or the broker
#: lost the producer's state in a crash) and every later publish fails the same way until the
#: producer is replaced (aiokafka does not bump the epoch or reset the sequences itself).
PRODUCER_STATE_ERRORS: tuple[type[KafkaError], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
)


class KafkaEventPublisher:
    """Publishes envelopes through ``broker``; while ``broker`` is None (not connected yet, or
    being replaced) every publish raises PublishError and ping is False."""

    def __init__(
        self,
        broker: KafkaBroker | None,
        settings: KafkaSettings,
        client_id: str = "dcr",
        retry_s: float = 2.0,
    ) -> None:
        self.broker = broker
        self._settings = settings
        self._client_id = client_id
        self._retry_s = retry_s
        self._connecting: asyncio.Task[None] | None = None

    async def publish(self, envelope: Envelope) -> None:
        broker = self.broker
        if broker is None:
            raise PublishError("not connected to Kafka")
        try:
            await asyncio.wait_for(
                broker.publish(
                    to_value(envelope),
                    self._settings.topic(envelope.topic),
                    key=envelope.key.encode(),
                    headers=to_headers(envelope),
                ),
                timeout=self._settings.publish_timeout_s,
            )
        except PRODUCER_STATE_ERRORS as exc:
            log.warning("Kafka producer out of step (%s); replacing it", type(exc).__name__)
            self.connect_in_background(replacing=broker)
            raise PublishError(type(exc).__name__) from exc
        except (KafkaError, OSError, TimeoutError) as exc:
            raise PublishError(type(exc).__name__) from exc

    async def ping(self) -> bool:
        broker = self.broker
        return broker is not None and bool(await broker.ping(timeout=2.0))

    def connect_in_background(
        self, *, replacing: KafkaBroker | None = None, first_wait_s: float = 0.0
    ) -> None:
        """Drop ``replacing`` if it is the current broker, then (unless already connecting)
        connect a new one in the background, retrying every ``retry_s`` seconds."""
        if replacing is not None and self.broker is replacing:
            self.broker = None
        if self.broker is None and (self._connecting is None or self._connecting.done()):
            self._connecting = asyncio.create_task(self._connect(replacing, first_wait_s))

    async def _connect(self, old: KafkaBroker | None, first_wait_s: float) -> None:
        if old is not None:
            with contextlib.suppress(Exception):
                await close_within(self._settings.publish_timeout_s, old.stop, "Kafka producer")
        await asyncio.sleep(first_wait_s)
        while self.broker is None:
            broker = await _start(self._settings, self._client_id)
            if broker is not None:
                self.broker = broker
                log.info("connected to Kafka at %s", self._settings.bootstrap_servers)
                return
            await asyncio.sleep(self._retry_s)

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        broker, self.broker = self.broker, None
        if broker is not None:
            # aiokafka's stop waits for every undelivered batch, without a deadline
            await close_within(self._settings.publish_timeout_s, broker.stop, "Kafka producer")


async def _start(settings: KafkaSettings, client_id: str) -> KafkaBroker | None:
    """One connection attempt: a started broker, or None (the failed broker is closed)."""
    broker = make_broker(settings, client_id)
    try:
        await asyncio.wait_for(broker.start(), timeout=settings.publish_timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning(
            "Kafka at %s unavailable (%s); will retry",
            settings.bootstrap_servers,
            type(exc).__name__,
        )
        with contextlib.suppress(Exception):
            await broker.stop()
        return None
    return broker


@contextlib.asynccontextmanager
async def connected_publisher(
    settings: KafkaSettings, client_id: str, retry_s: float = 2.0
) -> AsyncIterator[KafkaEventPublisher]:
    """A publisher connected to Kafka if the broker answers now; otherwise one that connects in
    the background (every ``retry_s`` seconds) and refuses publishes (503) until then. A
    producer that got out of step with the broker is replaced the same way. The broker is
    stopped on exit."""
    publisher = KafkaEventPublisher(
        await _start(settings, client_id), settings, client_id=client_id, retry_s=retry_s
    )
    if publisher.broker is None:
        publisher.connect_in_background(first_wait_s=retry_s)
    try:
        yield publisher
    finally:
        await publisher.close()
