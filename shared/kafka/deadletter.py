"""Publishing records a consumer cannot use to the dead-letter topic (``dcr.deadletter``).

A dead letter keeps the original key, value and headers unchanged (so it can be replayed as is)
and adds ``dlq_*`` headers: ``dlq_reason`` (safe to log: never payload values),
``dlq_original_topic``, ``dlq_original_partition``, ``dlq_original_offset`` and ``dlq_service``.
The producer is idempotent with acks=all; :meth:`DeadLetterPublisher.publish` returns only once
every letter is acknowledged (raises the Kafka error otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.kafka.topics import DEADLETTER
from shared.metrics import DEADLETTERED
from shared.settings import KafkaSettings

REASON_HEADER = "dlq_reason"
TOPIC_HEADER = "dlq_original_topic"
PARTITION_HEADER = "dlq_original_partition"
OFFSET_HEADER = "dlq_original_offset"
SERVICE_HEADER = "dlq_service"
_MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str  # physical topic of the original record
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    reason: str


def make_producer(settings: KafkaSettings, client_id: str) -> Any:
    """An idempotent acks=all AIOKafkaProducer (not started)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=int(settings.publish_timeout_s * 1000),
    )


def letter_headers(letter: DeadLetter, service: str) -> list[tuple[str, bytes]]:
    """The original headers (minus any earlier ``dlq_*``) followed by this letter's."""
    kept = [(k, v) for k, v in letter.headers if not k.startswith("dlq_")]
    return [
        *kept,
        (REASON_HEADER, letter.reason[:_MAX_REASON].encode()),
        (TOPIC_HEADER, letter.topic.encode()),
        (PARTITION_HEADER, str(letter.partition).encode()),
        (OFFSET_HEADER, str(letter.offset).encode()),
        (SERVICE_HEADER, service.encode()),
    ]


class DeadLetterPublisher:
    def __init__(self, producer: Any, settings: KafkaSettings, service: str) -> None:
        self._producer = producer
        self._settings = settings
        self._service = service

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Send every letter and wait until all are acknowledged."""
        if not letters:
            return
        topic = self._settings.topic(DEADLETTER)
        pending = [
            await self._producer.send(
                topic,
                value=letter.value,
                key=letter.key,
                headers=letter_headers(letter, self._service),
            )
            for letter in letters
        ]
        await asyncio.wait_for(
            asyncio.gather(*pending), timeout=self._settings.publish_timeout_s * 2
        )
        prefix = self._settings.topic_prefix
        for letter in letters:
            logical = letter.topic[len(prefix) :] if letter.topic.startswith(prefix) else "other"
            DEADLETTERED.labels(self._service, logical).inc()
