"""The projection's background work for the service: Kafka clients, the consume loop, freshness.

Lifecycle: wait (shared advisory lock) while a rebuild holds the exclusive one, start the
consumer and the dead-letter producer (retrying while Kafka is down), subscribe to the event
topics with the rebalance listener, then run :class:`~.consumer.Projector` until stopped.
The session holding the shared lock is watched: if it is lost (PostgreSQL restarted), applying
pauses until the lock is held again, so a rebuild never runs beside a live instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.projection.consumer import FigureDeferral, Projector
from services.projection.metrics import LOCK_SESSION_LOST
from services.projection.settings import ProjectionSettings
from services.projection.store import REBUILD_LOCK_NS
from shared.city import City
from shared.kafka.deadletter import DeadLetterPublisher, make_producer
from shared.kafka.security import client_kwargs
from shared.kafka.topics import EVENT_TOPICS
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)
SERVICE = "projection"
#: How often the session holding the shared rebuild lock is checked (it is also watched for
#: the server closing it, which is noticed at once).
LOCK_CHECK_S = 2.0


@dataclass(frozen=True, slots=True)
class Freshness:
    """How current the read models are.

    ``data_complete_until``: every event the platform received (Kafka timestamp) before this
    instant is included; ``now`` when nothing is waiting. ``lag_events``: records in the event
    topics not yet applied by the group. Both None when Kafka cannot be asked.
    """

    data_complete_until: datetime | None
    lag_events: int | None
    last_applied_record_time: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "data_complete_until": _iso(self.data_complete_until),
            "lag_events": self.lag_events,
            "last_applied_record_time": _iso(self.last_applied_record_time),
        }


def make_consumer(kafka: KafkaSettings, settings: ProjectionSettings, *, group: bool) -> Any:
    """A consumer that never commits to Kafka (offsets are stored in PostgreSQL).

    With ``group``, it joins the Kafka group ``<topic prefix><group_id>`` (the prefix keeps test
    runs sharing a broker out of each other's groups); without, partitions are assigned by hand.
    """
    return AIOKafkaConsumer(
        **client_kwargs(kafka),
        group_id=kafka.topic(settings.group_id) if group else None,
        client_id=f"dcr-{SERVICE}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=min(3000, settings.session_timeout_ms // 3),
        # Catching up: each fetch brings up to this much per partition (a batch of the
        # projection is up to batch_max_records records over all partitions).
        max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
        fetch_max_bytes=4 * MAX_PARTITION_FETCH_BYTES,
    )


#: Per partition and fetch: ~10,000 typical records (~400 bytes each).
MAX_PARTITION_FETCH_BYTES = 4 * 1024 * 1024


class ProjectionRunner:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        city: City,
        settings: ProjectionSettings,
        kafka: KafkaSettings,
        dsn: str,
    ) -> None:
        self._pool = pool
        self._city = city
        self._settings = settings
        self._kafka = kafka
        self._dsn = dsn
        self._stop = asyncio.Event()
        self._consumer: Any = None
        self.running = False
        self._fresh: tuple[float, Freshness] | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        lock_conn = await self._wait_for_rebuild_lock()
        if lock_conn is None:
            return
        consumer = producer = None
        try:
            while not self._stop.is_set():
                consumer = make_consumer(self._kafka, self._settings, group=True)
                producer = make_producer(self._kafka, client_id=f"dcr-{SERVICE}-deadletter")
                try:
                    await producer.start()
                    await consumer.start()
                    break
                except (KafkaError, OSError) as exc:
                    log.warning("Kafka not available (%s); retrying", type(exc).__name__)
                    await _close(consumer, producer)
                    consumer = producer = None
                    await _sleep_or_stop(self._stop, self._settings.retry_backoff_s)
            if consumer is None or producer is None:
                return
            projector = Projector(
                pool=self._pool,
                city=self._city,
                group=self._settings.group_id,
                kafka=self._kafka,
                deadletters=DeadLetterPublisher(producer, self._kafka, SERVICE),
                max_visit=self._settings.max_visit,
                figures=FigureDeferral(
                    self._settings.figures_defer_min_records, self._settings.figures_max_delay_s
                ),
            )
            projector.bind(consumer)
            consumer.subscribe(
                topics=[self._kafka.topic(t) for t in EVENT_TOPICS], listener=projector.listener()
            )
            self._consumer = consumer
            log.info("projection consuming as group %s", self._settings.group_id)
            while not self._stop.is_set():
                self.running = True
                halt = asyncio.Event()
                guard = asyncio.create_task(self._guard_lock(lock_conn, halt))
                try:
                    await projector.run(
                        halt,
                        poll_timeout_ms=self._settings.poll_timeout_ms,
                        max_records=self._settings.batch_max_records,
                        backoff_s=self._settings.retry_backoff_s,
                    )
                finally:
                    guard.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await guard
                if self._stop.is_set():
                    break
                # The session holding the shared rebuild lock is gone (e.g. PostgreSQL was
                # restarted): apply nothing more until the lock is held again, so a rebuild can
                # never run beside this instance.
                log.warning("lost the database session holding the rebuild lock; re-taking it")
                LOCK_SESSION_LOST.inc()
                self.running = False
                await _close_conn(lock_conn)
                relocked = await self._wait_for_rebuild_lock()
                if relocked is None:
                    return
                lock_conn = relocked
        finally:
            self.running = False
            self._consumer = None
            await _close(consumer, producer)
            await _close_conn(lock_conn)

    async def _guard_lock(self, conn: asyncpg.Connection, halt: asyncio.Event) -> None:
        """Set ``halt`` when the runner is stopped or ``conn`` (the session holding the shared
        rebuild lock) is lost: at once when the server closes it, else at the next check."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            while not self._stop.is_set() and not lost.is_set() and not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=5)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    break
                stopped = asyncio.create_task(self._stop.wait())
                gone = asyncio.create_task(lost.wait())
                try:
                    await asyncio.wait({stopped, gone}, timeout=LOCK_CHECK_S)
                finally:
                    stopped.cancel()
                    gone.cancel()
        finally:
            halt.set()

    async def _wait_for_rebuild_lock(self) -> asyncpg.Connection | None:
        """A connection holding the shared rebuild lock (a rebuild takes it exclusively)."""
        waiting_logged = False
        while not self._stop.is_set():
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("database not available (%s); retrying", type(exc).__name__)
                await _sleep_or_stop(self._stop, self._settings.retry_backoff_s)
                continue
            try:
                locked = await conn.fetchval(
                    "SELECT pg_try_advisory_lock_shared($1, 0)", REBUILD_LOCK_NS
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("database not available (%s); retrying", type(exc).__name__)
                await _close_conn(conn)
                await _sleep_or_stop(self._stop, self._settings.retry_backoff_s)
                continue
            if locked:
                return conn
            await conn.close()
            if not waiting_logged:
                log.warning("a rebuild is running; waiting for it to finish")
                waiting_logged = True
            await _sleep_or_stop(self._stop, self._settings.retry_backoff_s)
        return None

    async def kafka_ok(self) -> bool:
        consumer = self._consumer
        if consumer is None:
            return False
        try:
            await asyncio.wait_for(consumer.topics(), timeout=2.0)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True

    async def freshness(self) -> Freshness:
        """Group-wide freshness (all instances' partitions), cached for one second."""
        now = time.monotonic()
        if self._fresh is not None and now - self._fresh[0] < 1.0:
            return self._fresh[1]
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT topic, partition, next_offset, last_record_time FROM projection_offsets "
                "WHERE consumer_group = $1",
                self._settings.group_id,
            )
        stored = {
            (r["topic"], r["partition"]): (r["next_offset"], r["last_record_time"]) for r in rows
        }
        times = [t for _, t in stored.values() if t is not None]
        last = max(times) if times else None
        ends = await self._end_offsets()
        if ends is None:
            fresh = Freshness(None, None, last)
        else:
            lag = 0
            complete: datetime | None = datetime.now(UTC)
            for tp, end in ends.items():
                offset, applied_until = stored.get(tp, (0, None))
                if end > offset:
                    lag += end - offset
                    if applied_until is None:
                        complete = None
                    elif complete is not None:
                        complete = min(complete, applied_until)
            fresh = Freshness(complete, lag, last)
        self._fresh = (now, fresh)
        return fresh

    async def _end_offsets(self) -> dict[tuple[str, int], int] | None:
        consumer = self._consumer
        if consumer is None:
            return None
        tps = [
            TopicPartition(self._kafka.topic(t), p)
            for t in EVENT_TOPICS
            for p in (consumer.partitions_for_topic(self._kafka.topic(t)) or ())
        ]
        if not tps:
            return None
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(tps), timeout=3.0)
        except (KafkaError, OSError, TimeoutError):
            return None
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}


async def _close(*clients: Any) -> None:
    for c in clients:
        if c is not None:
            try:
                await c.stop()
            except (KafkaError, OSError) as exc:
                log.warning("closing a Kafka client failed (%s)", type(exc).__name__)


async def _close_conn(conn: asyncpg.Connection) -> None:
    """Close a connection that may already be dead (abort it if closing does not finish)."""
    try:
        await asyncio.wait_for(conn.close(), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None
