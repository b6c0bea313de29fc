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

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from shared.events.envelope import Envelope, to_headers, to_value
from shared.ingest.ports import PublishError
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


def make_broker(settings: KafkaSettings, client_id: str) -> KafkaBroker:
    """A broker for publishing: idempotent producer, acks=all. Creates no connection yet.

    FastStream's Prometheus middleware adds ``dcr_faststream_published_messages_*`` metrics
    (labels: app, broker, destination topic; no message content).
    """
    return KafkaBroker(
        settings.bootstrap_servers,
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


class KafkaEventPublisher:
    """Publishes envelopes through ``broker``; while ``broker`` is None (not connected yet) every
    publish raises PublishError and ping is False."""

    def __init__(self, broker: KafkaBroker | None, settings: KafkaSettings) -> None:
        self.broker = broker
        self._settings = settings

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
        except (KafkaError, OSError, TimeoutError) as exc:
            raise PublishError(type(exc).__name__) from exc

    async def ping(self) -> bool:
        broker = self.broker
        return broker is not None and bool(await broker.ping(timeout=2.0))


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
    the background (every ``retry_s`` seconds) and refuses publishes (503) until then.
    The broker is stopped on exit."""
    publisher = KafkaEventPublisher(await _start(settings, client_id), settings)

    async def keep_trying() -> None:
        while publisher.broker is None:
            await asyncio.sleep(retry_s)
            publisher.broker = await _start(settings, client_id)
        log.info("connected to Kafka at %s", settings.bootstrap_servers)

    task = asyncio.create_task(keep_trying()) if publisher.broker is None else None
    try:
        yield publisher
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if publisher.broker is not None:
            await publisher.broker.stop()
