"""Drives the drug alert rule from Kafka: consumes the incidents and corrections topics, persists,
publishes alerts.

Per record, in this order (at least once, duplicates harmless):

1. decode; apply :func:`services.incident.alerting.evaluate` to a copy of the state;
2. store the overdose and the alerts it raised in one PostgreSQL transaction (overdoses keyed by
   CloudEvents (source, id), alerts by episode, both unique: a redelivered record or a restart
   never stores either twice);
3. publish stored-but-unpublished alerts (``acks=all``) and mark them published;
4. after a partition's batch: commit its offsets.

A void (``dk.dcr.report.voided`` on the corrections topic) goes through
:func:`services.incident.alerting.void` and :meth:`AlertStore.record_void
<services.incident.alert_store.AlertStore.record_void>` (the void, the voided overdose's
deletion, the withdrawals and any alert raised: one transaction), then the same publication.
A report and its void arrive on two topics in either order; the state and the store make both
orders end the same, and a restart reloads the voids with the overdoses.

Any failure (Kafka, PostgreSQL, loss of leadership) ends the session; after ``retry_s`` a new one
rebuilds the state from PostgreSQL, republishes what was stored but not acknowledged (same event
ids) and resumes at the committed offsets. The worker never crashes the service: ingest keeps
working without it.

Scaling: exactly one worker evaluates, whatever the number of incident instances: a session
first becomes leader (:mod:`services.incident.leader`, a PostgreSQL advisory lock) and then
assigns itself every partition of both topics (no group rebalancing; the group
``DCR_KAFKA_TOPIC_PREFIX`` + ``DCR_ALERTS_CONSUMER_GROUP`` only stores the offsets).

Nothing is ignored silently: a record that cannot be decoded, comes from an unknown facility, is
too late to matter (see the rule's docstring) or was voided before it arrived is counted in
``dcr_drug_alert_reports_ignored_total{reason}``. Liveness (``heartbeat``, a standby's lock
attempts included), leadership and lag are metrics, and ``/healthz`` reports ``alert_worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter, Gauge

from services.incident.alert_store import AlertStore
from services.incident.alerting import (
    AlertRules,
    AlertState,
    due_resolutions,
    evaluate,
    void,
)
from services.incident.leader import Leadership, lock_key
from services.incident.settings import AlertSettings
from shared.bootstrap import running
from shared.city import City
from shared.events.envelope import DecodeError, Envelope, decode
from shared.events.payloads import (
    DrugAlertRaised,
    DrugCheckResult,
    IncidentReported,
    ReportVoided,
)
from shared.ingest.app import Runtime
from shared.ingest.ports import EventPublisher
from shared.kafka.admin import partitions_of
from shared.kafka.security import client_kwargs
from shared.kafka.topics import CORRECTIONS, INCIDENTS
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

DRUG_ALERTS = Counter("dcr_drug_alerts", "Drug alerts published", ["district", "reason"])
WITHDRAWN = Counter(
    "dcr_drug_alerts_withdrawn",
    "Drug alerts withdrawn because a report they counted was voided",
    ["district"],
)
IGNORED = Counter(
    "dcr_drug_alert_reports_ignored",
    "Incident-topic records the drug alert rule could not use (undecodable, unknown_facility, "
    "too_late: event time older than DCR_ALERTS_MAX_LATENESS, voided: voided before it arrived)",
    ["reason"],
)
LEADER = Gauge(
    "dcr_drug_alert_worker_leader", "1 while this instance is the active drug alert evaluator"
)
HEARTBEAT = Gauge(
    "dcr_drug_alert_worker_heartbeat_timestamp_seconds",
    "Last time the drug alert worker polled Kafka (leader) or tried the leader lock (standby)",
)
LAG = Gauge(
    "dcr_drug_alert_worker_lag_records",
    "Incident records not yet processed by the active drug alert evaluator (leader only)",
)


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
        self.leader = False
        self._heartbeat = time.monotonic()
        #: One flush at a time in this process (the loop and the ack route both flush).
        self._flushing = asyncio.Lock()

    @property
    def store(self) -> AlertStore:
        return self._store

    def beat(self) -> None:
        self._heartbeat = time.monotonic()
        HEARTBEAT.set_to_current_time()

    def alive(self) -> bool:
        """Whether the worker polled Kafka or tried the lock recently (liveness)."""
        return time.monotonic() - self._heartbeat < self._settings.liveness_s

    def health_checks(self) -> dict[str, bool]:
        """Joins the incident service's ``/healthz`` (see shared.ingest.app)."""
        return {"alert_worker": self.alive()}

    async def run(self, leadership: Leadership) -> None:
        """Lead-then-consume sessions until cancelled, pausing ``retry_s`` after a failed one."""
        while True:
            try:
                async with leadership.lead(self._settings.retry_s, self.beat):
                    self._set_leader(True)
                    await self._session(leadership)
            except Exception as exc:  # any failure: log, pause, start a fresh session
                log.warning(
                    "drug alert worker stopped (%s); restarting in %.1f s",
                    type(exc).__name__,
                    self._settings.retry_s,
                )
                log.debug("drug alert worker failure", exc_info=True)
            finally:
                self._set_leader(False)
            self.beat()
            await asyncio.sleep(self._settings.retry_s)

    def _set_leader(self, leader: bool) -> None:
        if leader != self.leader:
            log.info("drug alert worker %s", "leads" if leader else "is a standby")
        self.leader = leader
        LEADER.set(1 if leader else 0)
        if not leader:
            LAG.set(0)

    async def restore(self) -> None:
        """Rebuild the state from the store (overdoses, adulterant alerts, voids) and publish
        what was stored but not published: the start of every session."""
        now = self._clock()
        since = now - self._rules.max_lateness - self._rules.window
        overdoses, adulterants = await self._store.load(since)
        voids = await self._store.voids(since)
        withdrawn = await self._store.withdrawn_episodes(since - self._rules.window)
        self.state = AlertState.restore(self._rules, now, overdoses, adulterants, voids, withdrawn)
        await self.flush()

    async def _session(self, leadership: Leadership) -> None:
        await self.restore()
        topics = [self._kafka.topic(INCIDENTS), self._kafka.topic(CORRECTIONS)]
        consumer = AIOKafkaConsumer(
            **client_kwargs(self._kafka),
            group_id=self._kafka.topic_prefix + self._settings.consumer_group,
            client_id="dcr-incident-alerts",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            parts = await partitions_of(self._kafka, topics)
            for topic in topics:
                if not any(tp.topic == topic for tp in parts):
                    raise LookupError(f"no partitions for {topic}")
            consumer.assign(parts)
            log.info("drug alert worker consuming %s (%d partitions)", topics, len(parts))
            while True:
                await leadership.confirm()
                self.beat()
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, records in batch.items():
                    for record in records:
                        await self.handle(record.headers, record.value)
                    await consumer.commit({tp: records[-1].offset + 1})
                await self.resolve_due()
                ends = await consumer.end_offsets(parts)
                behind = [max(0, ends[tp] - await consumer.position(tp)) for tp in parts]
                LAG.set(sum(behind))
        finally:
            await consumer.stop()

    async def handle(self, headers: Iterable[tuple[str, bytes]], value: bytes | None) -> None:
        """Process one incidents-topic record (steps 1-3 of the module docstring)."""
        try:
            event = decode(headers, value)
        except DecodeError as exc:  # the projection dead-letters it; here it is only skipped
            log.warning("drug alerts: skipping an undecodable record: %s", exc.reason)
            IGNORED.labels("undecodable").inc()
            return
        if not isinstance(event.data, IncidentReported | DrugCheckResult | ReportVoided):
            return
        district = self._city.district_of(event.facility_id or "")
        if district is None:
            log.warning(
                "drug alerts: %s from unknown facility %s ignored", event.type, event.facility_id
            )
            IGNORED.labels("unknown_facility").inc()
            return
        if isinstance(event.data, ReportVoided):
            await self._void(event, district)
            return
        step = evaluate(self._rules, self.state, event, district, self._clock())
        if step.too_late or step.voided:
            reason = "too_late" if step.too_late else "voided"
            log.warning("drug alerts: %s from %s not counted: %s", event.type, event.source, reason)
            IGNORED.labels(reason).inc()
            return
        key = (district, event.source, event.id)
        new_overdose = step.state.knows_overdose(*key) and not self.state.knows_overdose(*key)
        if new_overdose or step.alerts:
            await self._store.record((*key, event.time) if new_overdose else None, step.alerts)
        self.state = step.state
        if step.alerts:
            await self.flush()

    async def _void(self, event: Envelope, district: str) -> None:
        """Apply a void: store it (always: its report may arrive later) with what it withdrew
        or raised, then publish."""
        now = self._clock()
        since = now - self._rules.max_lateness - 2 * self._rules.window
        raised = await self._store.raised_alerts(district, since)
        step = void(self._rules, self.state, event, district, raised, now)
        await self._store.record_void(event, step.withdrawn, step.alerts)
        self.state = step.state
        for env in step.withdrawn:
            WITHDRAWN.labels(district).inc()
            log.info("drug alert withdrawn: %s", getattr(env.data, "episode", ""))
        if step.withdrawn or step.alerts:
            await self.flush()

    async def resolve_due(self) -> None:
        """Resolve the alerts whose episode ended (see ``alerting.due_resolutions``) and
        publish the resolutions."""
        due = due_resolutions(
            await self._store.open_alerts(),
            await self._store.last_overdoses(),
            self._settings.quiet_period,
            self._clock(),
        )
        resolved = [e for e in due if await self._store.resolve(e)]
        if resolved:
            await self.flush()

    async def flush(self) -> None:
        """Publish every stored, unpublished alert and lifecycle event (oldest first) and mark
        it published. Serialised in this process; an event published by two instances at once
        carries the same CloudEvents id both times, which every consumer deduplicates."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        for alert in await self._store.unpublished():
            await self._publisher.publish(alert)
            await self._store.mark_published(alert.id)
            data = alert.data
            assert isinstance(data, DrugAlertRaised)
            DRUG_ALERTS.labels(data.district, data.reason.value).inc()
            log.info("drug alert published: %s", data.episode)
        for event in await self._store.outbox_unpublished():
            await self._publisher.publish(event)
            await self._store.mark_outbox_published(event.id)
            log.info("%s published for alert %s", event.type, getattr(event.data, "alert_id", ""))


@contextlib.asynccontextmanager
async def run_alert_worker(rt: Runtime, settings: AlertSettings) -> AsyncIterator[AlertWorker]:
    """Runs an :class:`AlertWorker` for the incident app's lifetime on the app's publisher and
    its PostgreSQL pool (the leader's advisory lock holds one session of its own)."""
    deps, kafka = rt.deps, rt.platform.kafka
    worker = AlertWorker(
        rules=AlertRules(
            settings.threshold,
            settings.window,
            settings.max_lateness,
            deps.city.zone,
            settings.late_after,
        ),
        city=deps.city,
        store=AlertStore(rt.pool),
        publisher=deps.publisher,
        kafka=kafka,
        settings=settings,
    )
    leadership = Leadership(rt.platform.dsn, lock_key(kafka.topic_prefix + settings.consumer_group))
    async with running(worker.run(leadership), "drug-alert-worker"):
        yield worker
