"""Ports of the ingest mechanism (what it needs from the outside world), with in-memory fakes.

Adapters: :mod:`shared.ingest.kafka_publisher` and :mod:`shared.ingest.pg_idempotency`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from shared.events.envelope import Envelope


class PublishError(RuntimeError):
    """The broker did not acknowledge the event (unreachable, timed out, refused)."""


class StoreUnavailable(RuntimeError):
    """The idempotency store (PostgreSQL) could not be reached."""


class EventPublisher(Protocol):
    async def publish(self, envelope: Envelope) -> None:
        """Return only once the broker acknowledged the event (acks=all); else PublishError."""

    async def ping(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What a request made under one Idempotency-Key produced.

    ``scope`` is (principal, route): one key means nothing on another route.
    ``event_key`` is (principal, client-chosen ``event_id``) when the body names one: unique
    across every route and service, so one event id can never carry two different reports
    (the projection deduplicates by CloudEvents (source, id), so a second body would be lost).
    ``envelope_json`` holds the event to (re)publish: it contains pseudonyms, never clear codes.
    ``published`` turns true once the broker acknowledged it.
    """

    scope: str
    key: str
    fingerprint: str
    envelope_json: str
    response: dict[str, Any]
    published: bool = False
    event_key: str | None = None


class IdempotencyStore(Protocol):
    async def claim(self, record: IdempotencyRecord) -> tuple[IdempotencyRecord, bool]:
        """Store ``record`` unless a record with its (scope, key) or its ``event_key`` exists;
        return the stored one and whether it is the one just stored (True) or an earlier
        request's (False). When several earlier records match, one whose fingerprint differs
        from ``record``'s is returned (the caller answers 409)."""

    async def mark_published(self, scope: str, key: str) -> None:
        """Record that the broker acknowledged the (scope, key) record's event. May be written
        after it returns: a record still unpublished is published again by a retry (same
        event id, deduplicated by consumers), never lost."""

    async def ping(self) -> bool: ...


@dataclass
class InMemoryPublisher:
    """Fake publisher for unit tests. ``fail`` simulates an unreachable broker."""

    published: list[Envelope] = field(default_factory=list)
    fail: bool = False

    async def publish(self, envelope: Envelope) -> None:
        if self.fail:
            raise PublishError("broker unavailable (fake)")
        self.published.append(envelope)

    async def ping(self) -> bool:
        return not self.fail


@dataclass
class InMemoryIdempotencyStore:
    records: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)

    async def claim(self, record: IdempotencyRecord) -> tuple[IdempotencyRecord, bool]:
        earlier = [
            r
            for r in self.records.values()
            if (r.scope, r.key) == (record.scope, record.key)
            or (record.event_key is not None and r.event_key == record.event_key)
        ]
        if not earlier:
            self.records[(record.scope, record.key)] = record
            return record, True
        differing = [r for r in earlier if r.fingerprint != record.fingerprint]
        return (differing or earlier)[0], False

    async def mark_published(self, scope: str, key: str) -> None:
        self.records[(scope, key)] = replace(self.records[(scope, key)], published=True)

    async def ping(self) -> bool:
        return True
