"""Publishing records a consumer cannot use to the dead-letter topic (``dcr.deadletter``).

A dead letter keeps the original key, value and headers unchanged (so it can be replayed as is)
and adds ``dlq_*`` headers: ``dlq_reason`` (safe to log: never payload values),
``dlq_original_topic``, ``dlq_original_partition``, ``dlq_original_offset`` and ``dlq_service``.
The producer is idempotent with acks=all; :meth:`DeadLetterPublisher.publish` returns only once
every letter is acknowledged (raises the Kafka error otherwise).

A record near Kafka's size limit cannot be copied whole: its letter (the record plus the
``dlq_*`` headers) would be refused as too large and, since a batch is retried until its letters
are stored, would stop the consumer at that record for good. Such a letter carries no value
(and, if still too large, neither the original headers nor the key) and says so in
``dlq_value_omitted`` / ``dlq_headers_omitted`` (the original size in bytes); the original stays
in its topic at ``dlq_original_topic/partition/offset`` (retention is unlimited).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.kafka.security import client_kwargs
from shared.kafka.topics import DEADLETTER
from shared.metrics import DEADLETTERED
from shared.settings import KafkaSettings

REASON_HEADER = "dlq_reason"
TOPIC_HEADER = "dlq_original_topic"
PARTITION_HEADER = "dlq_original_partition"
OFFSET_HEADER = "dlq_original_offset"
SERVICE_HEADER = "dlq_service"
VALUE_OMITTED_HEADER = "dlq_value_omitted"
HEADERS_OMITTED_HEADER = "dlq_headers_omitted"
_MAX_REASON = 500
#: Most bytes of key, value and headers a letter may carry: the producer refuses requests over
#: 1 MiB (aiokafka's max_request_size) and the broker batches over 1 MiB + 12 bytes (Kafka's
#: default message.max.bytes); 4 KiB stay for the record and batch framing.
MAX_LETTER_BYTES = 1024 * 1024 - 4096


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
        **client_kwargs(settings),
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


def _size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)


def letter_record(
    letter: DeadLetter, service: str, limit: int = MAX_LETTER_BYTES
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """The letter's key, value and headers: the original ones unless that is more than
    ``limit`` bytes (then without the value, and if need be without the original headers and
    key)."""
    headers = letter_headers(letter, service)
    if _size(letter.key, letter.value, headers) <= limit:
        return letter.key, letter.value, headers
    headers.append((VALUE_OMITTED_HEADER, str(len(letter.value or b"")).encode()))
    if _size(letter.key, None, headers) <= limit:
        return letter.key, None, headers
    own = [(k, v) for k, v in headers if k.startswith("dlq_")]
    original = sum(len(k) + len(v) for k, v in letter.headers)
    return None, None, [*own, (HEADERS_OMITTED_HEADER, str(original).encode())]


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
        pending = []
        for letter in letters:
            key, value, headers = letter_record(letter, self._service)
            pending.append(await self._producer.send(topic, value=value, key=key, headers=headers))
        await asyncio.wait_for(
            asyncio.gather(*pending), timeout=self._settings.publish_timeout_s * 2
        )
        prefix = self._settings.topic_prefix
        for letter in letters:
            logical = letter.topic[len(prefix) :] if letter.topic.startswith(prefix) else "other"
            DEADLETTERED.labels(self._service, logical).inc()
