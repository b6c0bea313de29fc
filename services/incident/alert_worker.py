"""Drives the drug alert rule from Kafka: consumes the incidents topic, persists, publishes alerts.

Per record, in this order (at least once, duplicates harmless):

1. decode; apply :func:`services.incident.alerting.evaluate` to a copy of the state;
2. store the overdose and the alerts it raised in one PostgreSQL transaction (alerts keyed by
   episode, unique: a redelivered record or a restart never stores an episode twice);
3. publish stored-but-unpublished alerts (``acks=all``) and mark them published;
4. after a partition's batch: commit its offsets.

Any failure (Kafka, PostgreSQL) ends the session; after ``retry_s`` a new one rebuilds the state
from PostgreSQL, republishes what was stored but not acknowledged (same event ids) and resumes at
the committed offsets. The worker never crashes the service: ingest keeps working without it.

Scaling: the rule needs every overdose of a district, and a district's facilities may sit on
different partitions, so exactly one worker must consume the group (one incident service
instance). Its consumer group is ``DCR_KAFKA_TOPIC_PREFIX`` + ``DCR_ALERTS_CONSUMER_GROUP``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter

from services.incident.alert_store import AlertStore
from services.incident.alerting import AlertRules, AlertState, evaluate
from services.incident.settings import AlertSettings
from shared.city import City
from shared.events.envelope import DecodeError, decode
from shared.events.payloads import DrugAlertRaised, DrugCheckResult, IncidentReported
from shared.ingest.api import IngestDeps
from shared.ingest.ports import EventPublisher
from shared.kafka.topics import INCIDENTS
from shared.settings import DatabaseSettings, KafkaSettings

log = logging.getLogger(__name__)

DRUG_ALERTS = Counter("dcr_drug_alerts", "Drug alerts published", ["district", "reason"])


class AlertWorker:
    def __init__(
        self,
        *,
        rules: AlertRules,
        city: City,
        store: AlertStore,
        publisher: EventPublisher,
        kafka: KafkaSettings,
        settings: AlertSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._rules = rules
        self._city = city
        self._store = store
        self._publisher = publisher
        self._kafka = kafka
        self._settings = settings
        self._clock = clock
        self.state = AlertState()

    async def run(self) -> None:
        """Run sessions until cancelled, pausing ``retry_s`` after a failed one."""
        while True:
            try:
                await self._session()
            except Exception as exc:  # any failure: log, pause, start a fresh session
                log.warning(
                    "drug alert worker stopped (%s); restarting in %.0f s",
                    type(exc).__name__,
                    self._settings.retry_s,
                )
                log.debug("drug alert worker failure", exc_info=True)
            await asyncio.sleep(self._settings.retry_s)

    async def _session(self) -> None:
        now = self._clock()
        overdoses, adulterants = await self._store.load(
            now - self._rules.max_lateness - self._rules.window
        )
        self.state = AlertState.restore(self._rules, now, overdoses, adulterants)
        await self.flush()
        consumer = AIOKafkaConsumer(
            self._kafka.topic(INCIDENTS),
            bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=self._kafka.topic_prefix + self._settings.consumer_group,
            client_id="dcr-incident-alerts",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            log.info("drug alert worker consuming %s", self._kafka.topic(INCIDENTS))
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, records in batch.items():
                    for record in records:
                        await self.handle(record.headers, record.value)
                    await consumer.commit({tp: records[-1].offset + 1})
        finally:
            await consumer.stop()

    async def handle(self, headers: Iterable[tuple[str, bytes]], value: bytes | None) -> None:
        """Process one incidents-topic record (steps 1-3 of the module docstring)."""
        try:
            event = decode(headers, value)
        except DecodeError as exc:  # the projection dead-letters it; here it is only skipped
            log.warning("drug alerts: skipping an undecodable record: %s", exc.reason)
            return
        if not isinstance(event.data, IncidentReported | DrugCheckResult):
            return
        district = self._city.district_of(event.facility_id or "")
        if district is None:
            log.warning(
                "drug alerts: %s from unknown facility %s ignored", event.type, event.facility_id
            )
            return
        step = evaluate(self._rules, self.state, event, district, self._clock())
        new_overdose = step.state.knows_overdose(
            district, event.id
        ) and not self.state.knows_overdose(district, event.id)
        if new_overdose or step.alerts:
            await self._store.record(
                (district, event.id, event.time) if new_overdose else None, step.alerts
            )
        self.state = step.state
        if step.alerts:
            await self.flush()

    async def flush(self) -> None:
        """Publish every stored, unpublished alert (oldest first) and mark it published."""
        for alert in await self._store.unpublished():
            await self._publisher.publish(alert)
            await self._store.mark_published(alert.id)
            data = alert.data
            assert isinstance(data, DrugAlertRaised)
            DRUG_ALERTS.labels(data.district, data.reason.value).inc()
            log.info("drug alert published: %s", data.episode)


@contextlib.asynccontextmanager
async def run_alert_worker(deps: IngestDeps) -> AsyncIterator[AlertWorker]:
    """The ``background`` hook of the incident app: runs an :class:`AlertWorker` for the app's
    lifetime on the app's publisher and its own small PostgreSQL pool."""
    settings = AlertSettings()
    db = DatabaseSettings()
    pool = await asyncpg.create_pool(db.dsn.get_secret_value(), min_size=1, max_size=2)
    try:
        worker = AlertWorker(
            rules=AlertRules(
                settings.threshold, settings.window, settings.max_lateness, deps.city.zone
            ),
            city=deps.city,
            store=AlertStore(pool),
            publisher=deps.publisher,
            kafka=KafkaSettings(),
            settings=settings,
        )
        task = asyncio.create_task(worker.run(), name="drug-alert-worker")
        try:
            yield worker
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await pool.close()
