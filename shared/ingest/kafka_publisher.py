"""Kafka adapter of the EventPublisher port, on a FastStream KafkaBroker.

The broker must be created with ``enable_idempotence=True`` and ``acks="all"`` (see
:func:`make_broker`): a publish returns only after every in-sync replica has the record.
"""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from shared.events.envelope import Envelope, to_headers, to_value
from shared.ingest.ports import PublishError
from shared.settings import KafkaSettings


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
    def __init__(self, broker: KafkaBroker, settings: KafkaSettings) -> None:
        self._broker = broker
        self._settings = settings

    async def publish(self, envelope: Envelope) -> None:
        try:
            await asyncio.wait_for(
                self._broker.publish(
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
        return bool(await self._broker.ping(timeout=2.0))
