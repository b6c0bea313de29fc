"""Domain metrics of the consumption rooms, computed from the projection's read models.

Why from PostgreSQL and not counted in the consumer: the read models are exactly-once (every
event is applied once, whatever the retries, replays and rebalances), shared by every projection
instance and durable. Figures derived from them are therefore exact, identical on every instance
(dashboards and alerts take ``max by (...)`` over instances) and survive restarts.

How: :func:`install_domain_metrics` registers one custom collector with the Prometheus registry
(once per process) and starts a background task that reads the read models every
``DCR_DOMAIN_METRICS_REFRESH_S`` seconds (default 5) in one read-only REPEATABLE READ transaction
(one consistent snapshot) into an immutable :class:`Snapshot`. A scrape renders the latest
snapshot; it never touches the database. While a rebuild holds its exclusive lock the snapshot is
not refreshed (the tables are being truncated and replayed): counters keep their last value
instead of dropping and climbing back.

Series (labels are bounded: district, facility, item, kind, outcome; never a client pseudonym, a
visit id or an incident id):

* counters, cumulative over all days, from append-only sums (they never go down, except when a
  rebuild empties the tables, which Prometheus treats as a counter reset):
  ``dcr_visits_started_total``, ``dcr_visits_ended_total``, ``dcr_visits_refused_total``
  {district, facility}; ``dcr_supplies_dispensed_total`` {district, item};
  ``dcr_sharps_returned_total``, ``dcr_sharps_returned_grams_total``,
  ``dcr_overdoses_total``, ``dcr_life_threatening_incidents_total``,
  ``dcr_naloxone_doses_total``, ``dcr_street_needles_collected_total``,
  ``dcr_street_needles_collected_grams_total`` {district}; ``dcr_incidents_total``
  {district, kind}; ``dcr_incident_outcomes_total`` {district, outcome};
* gauges for today (the city's calendar day): ``dcr_district_*_today`` {district} (visits,
  unique clients, refusals, incidents, overdoses, life-threatening incidents, naloxone doses,
  sharps returned, street needles and their grams), ``dcr_district_supplies_dispensed_today``
  {district, item}, ``dcr_facility_visits_today`` and ``dcr_facility_refusals_today``
  {district, facility};
* facility state: ``dcr_facility_booths``, ``dcr_facility_booths_in_use``,
  ``dcr_facility_open`` (1 while within opening hours and not ``planned``; computed at scrape
  time from ``city.yaml``), ``dcr_facility_last_event_timestamp_seconds`` {district, facility};
* stock: ``dcr_stock_on_hand`` and ``dcr_stock_cover_seconds`` {district, facility, item}
  (on hand / mean daily dispensing of the last 7 days; absent when nothing was dispensed);
* ``dcr_drug_alerts_open`` {district}; the lifecycle: ``dcr_drug_alerts_by_state`` {district, state}
  (open, acknowledged, resolved, withdrawn) and ``dcr_drug_alert_seconds_to_acknowledge`` {district}
  (a summary: ``_sum`` / ``_count`` over every acknowledged alert);
* freshness: ``dcr_read_model_last_record_timestamp_seconds`` (Kafka timestamp of the newest
  record applied, all partitions and instances),
  ``dcr_domain_metrics_last_refresh_timestamp_seconds`` and
  ``dcr_domain_metrics_refresh_errors_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.projection.schema import DISTRICT_DAILY, Column, Unit
from services.projection.settings import ProjectionSettings
from services.projection.store import REBUILD_LOCK_NS
from shared.city import City, District, Facility, FacilityStatus
from shared.events.vocabulary import IncidentKind, Outcome, SupplyItem

log = logging.getLogger(__name__)

REFRESH_ERRORS = Counter(
    "dcr_domain_metrics_refresh_errors",
    "Failed refreshes of the domain metrics from the read models (the last snapshot is kept)",
)

_SECONDS_PER_DAY = 86_400
_ONE = Decimal(1)
_GRAMS_PER_KG = Decimal(1000)
#: district_daily_breakdown dimensions exported -> their vocabulary (every key gets a series).
_BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "supply_item": tuple(i.value for i in SupplyItem),
    "incident_kind": tuple(k.value for k in IncidentKind),
    "incident_outcome": tuple(o.value for o in Outcome),
}


def _factor(c: Column) -> Decimal:
    """Weights are exported in grams (whole numbers), counts as they are."""
    return _GRAMS_PER_KG if c.unit is Unit.KG else _ONE


#: district_daily columns summed over all days -> (counter name, help, factor) (:mod:`.schema`).
_DISTRICT_COUNTERS: tuple[tuple[str, str, str, Decimal], ...] = tuple(
    (c.name, c.metric.total, c.metric.total_help, _factor(c))
    for c in DISTRICT_DAILY
    if c.metric.total is not None
)
#: district_daily columns of today -> (gauge name, help, factor) (:mod:`.schema`).
_DISTRICT_TODAY: tuple[tuple[str, str, str, Decimal], ...] = tuple(
    (c.name, c.metric.today, c.metric.today_help, _factor(c))
    for c in DISTRICT_DAILY
    if c.metric.today is not None
)
_DISTRICT_COLUMNS = sorted({c for c, *_ in _DISTRICT_COUNTERS} | {c for c, *_ in _DISTRICT_TODAY})


class DomainMetricsSettings(BaseSettings):
    """``DCR_DOMAIN_METRICS_*``."""

    model_config = SettingsConfigDict(env_prefix="DCR_DOMAIN_METRICS_")

    #: Seconds between two reads of the read models.
    refresh_s: float = Field(default=5.0, ge=0.2, le=300)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The read models' figures at one instant (one REPEATABLE READ transaction)."""

    taken_at: float
    today: date
    #: facility -> (visits started, visits ended, booths in use)
    visits: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    #: facility -> (refusals over all days, visits today, refusals today)
    facility_days: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    #: district -> column -> (sum over all days, today)
    district: Mapping[str, Mapping[str, tuple[Decimal, Decimal]]] = field(default_factory=dict)
    #: (district, dimension, key) -> (sum over all days, today)
    breakdown: Mapping[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    #: (facility, item) -> (on hand, dispensed in the last 7 days)
    stock: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    open_alerts: Mapping[str, int] = field(default_factory=dict)
    #: (district, state) -> alerts
    alert_states: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: district -> (acknowledged alerts, sum of their seconds to acknowledge)
    ack_seconds: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    last_event: Mapping[str, datetime] = field(default_factory=dict)
    last_record: datetime | None = None


# --- reading the read models ------------------------------------------------------------------

_REBUILDING = """
SELECT EXISTS (SELECT 1 FROM pg_locks
               WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = 0
                 AND objsubid = 2 AND mode = 'ExclusiveLock' AND granted
                 AND database = (SELECT oid FROM pg_database
                                 WHERE datname = current_database()))"""

_VISITS = """
SELECT facility, count(start_time) AS started, count(end_time) AS ended,
       count(*) FILTER (WHERE start_time IS NOT NULL AND end_time IS NULL
                          AND start_time > now() - make_interval(secs => $1)
                          AND start_time <= now() + interval '5 minutes') AS in_use
FROM visits GROUP BY facility"""

_FACILITY_DAYS = """
SELECT facility, sum(refusals) AS refusals,
       coalesce(sum(visits) FILTER (WHERE day = $1), 0) AS visits_today,
       coalesce(sum(refusals) FILTER (WHERE day = $1), 0) AS refusals_today
FROM facility_daily GROUP BY facility"""

_DISTRICT_DAYS = (
    "SELECT district, "  # noqa: S608 (column names are constants of this module)
    + ", ".join(
        f"sum({c}) AS {c}, coalesce(sum({c}) FILTER (WHERE day = $1), 0) AS {c}_today"
        for c in _DISTRICT_COLUMNS
    )
    + " FROM district_daily GROUP BY district"
)

_BREAKDOWN = """
SELECT district, dimension, key, sum(n) AS total,
       coalesce(sum(n) FILTER (WHERE day = $1), 0) AS today
FROM district_daily_breakdown WHERE dimension = ANY($2::text[])
GROUP BY district, dimension, key"""

# Pairs are probed through the (facility, item, at) index: no scan of the whole movement log to
# find which pairs exist. On hand = latest count + movements strictly after it (as the read API).
_STOCK = """
WITH pairs AS (SELECT * FROM unnest($1::text[], $2::text[]) AS p(facility, item))
SELECT p.facility, p.item,
       coalesce(c.quantity, 0)
         + coalesce((SELECT sum(m.delta) FROM stock_movements m
                     WHERE m.facility = p.facility AND m.item = p.item
                       AND (c.counted_at IS NULL OR m.at > c.counted_at)), 0) AS on_hand,
       coalesce((SELECT -sum(m.delta) FROM stock_movements m
                 WHERE m.facility = p.facility AND m.item = p.item AND m.delta < 0
                   AND m.at > now() - interval '7 days' AND m.at <= now()), 0) AS used_7d
FROM pairs p LEFT JOIN stock_counts c ON c.facility = p.facility AND c.item = p.item
WHERE c.facility IS NOT NULL
   OR EXISTS (SELECT 1 FROM stock_movements m WHERE m.facility = p.facility AND m.item = p.item)"""

_ALERTS = "SELECT district, count(*) AS n FROM alerts WHERE state = 'open' GROUP BY district"
_ALERT_STATES = """
SELECT district, state, count(*) AS n, count(seconds_to_acknowledge) AS acked,
       coalesce(sum(seconds_to_acknowledge), 0) AS ack_seconds
FROM alerts GROUP BY district, state"""
_LAST_EVENT = "SELECT facility, last_event_time FROM facility_state"
_LAST_RECORD = "SELECT max(last_record_time) FROM projection_offsets WHERE consumer_group = $1"


async def read_snapshot(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    city: City,
    settings: ProjectionSettings,
    now: datetime | None = None,
) -> Snapshot | None:
    """The figures of the read models, or None while a rebuild runs. One read-only transaction."""
    now = now or datetime.now(UTC)
    today = now.astimezone(city.zone).date()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL statement_timeout = '10s'")
        if await conn.fetchval(_REBUILDING, REBUILD_LOCK_NS):
            return None
        visits = {
            r["facility"]: (r["started"], r["ended"], r["in_use"])
            for r in await conn.fetch(_VISITS, settings.stale_visit_hours * 3600)
        }
        facility_days = {
            r["facility"]: (int(r["refusals"]), int(r["visits_today"]), int(r["refusals_today"]))
            for r in await conn.fetch(_FACILITY_DAYS, today)
        }
        district: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
        for r in await conn.fetch(_DISTRICT_DAYS, today):
            district[r["district"]] = {
                c: (Decimal(r[c]), Decimal(r[f"{c}_today"])) for c in _DISTRICT_COLUMNS
            }
        breakdown = {
            (r["district"], r["dimension"], r["key"]): (int(r["total"]), int(r["today"]))
            for r in await conn.fetch(_BREAKDOWN, today, list(_BREAKDOWNS))
        }
        facilities = [f.id for f in city.facilities for _ in SupplyItem]
        items = [i.value for _ in city.facilities for i in SupplyItem]
        stock = {
            (r["facility"], r["item"]): (int(r["on_hand"]), int(r["used_7d"]))
            for r in await conn.fetch(_STOCK, facilities, items)
        }
        alerts = {r["district"]: int(r["n"]) for r in await conn.fetch(_ALERTS)}
        alert_states: dict[tuple[str, str], int] = {}
        ack_seconds: dict[str, tuple[int, float]] = {}
        for r in await conn.fetch(_ALERT_STATES):
            alert_states[(r["district"], r["state"])] = int(r["n"])
            n, total = ack_seconds.get(r["district"], (0, 0.0))
            ack_seconds[r["district"]] = (n + int(r["acked"]), total + float(r["ack_seconds"]))
        last_event = {r["facility"]: r["last_event_time"] for r in await conn.fetch(_LAST_EVENT)}
        last_record = await conn.fetchval(_LAST_RECORD, settings.group_id)
    return Snapshot(
        taken_at=time.time(),
        today=today,
        visits=visits,
        facility_days=facility_days,
        district=district,
        breakdown=breakdown,
        stock=stock,
        open_alerts=alerts,
        alert_states=alert_states,
        ack_seconds=ack_seconds,
        last_event=last_event,
        last_record=last_record,
    )


# --- rendering --------------------------------------------------------------------------------


def render(snapshot: Snapshot | None, city: City, now: datetime | None = None) -> list[Metric]:
    """The metric families of ``snapshot`` (only the city-derived ones when it is None)."""
    now = now or datetime.now(UTC)
    local_now = now.astimezone(city.zone)
    fac_labels = ["district", "facility"]
    booths = GaugeMetricFamily("dcr_facility_booths", "Consumption booths", labels=fac_labels)
    is_open = GaugeMetricFamily(
        "dcr_facility_open",
        "1 while the facility is within its opening hours (and not only planned), else 0",
        labels=fac_labels,
    )
    for f in city.facilities:
        booths.add_metric([f.district, f.id], f.booths)
        open_now = f.status is not FacilityStatus.PLANNED and f.is_open(local_now)
        is_open.add_metric([f.district, f.id], 1.0 if open_now else 0.0)
    families: list[Metric] = [booths, is_open]
    if snapshot is None:
        return families
    families += _render_snapshot(snapshot, city)
    return families


def _render_snapshot(s: Snapshot, city: City) -> Iterator[Metric]:
    fac_labels = ["district", "facility"]
    district_of = {f.id: f.district for f in city.facilities}
    facilities = [f.id for f in city.facilities]
    districts = sorted({d.id for d in city.districts} | set(s.district))

    started = CounterMetricFamily("dcr_visits_started", "Visits started", labels=fac_labels)
    ended = CounterMetricFamily("dcr_visits_ended", "Visits ended", labels=fac_labels)
    refused = CounterMetricFamily("dcr_visits_refused", "Clients turned away", labels=fac_labels)
    in_use = GaugeMetricFamily(
        "dcr_facility_booths_in_use",
        "Visits started and not ended (a booth in use)",
        labels=fac_labels,
    )
    visits_today = GaugeMetricFamily(
        "dcr_facility_visits_today", "Visits started today", labels=fac_labels
    )
    refusals_today = GaugeMetricFamily(
        "dcr_facility_refusals_today", "Clients turned away today", labels=fac_labels
    )
    last_event = GaugeMetricFamily(
        "dcr_facility_last_event_timestamp_seconds",
        "Time of the latest event reported by the facility (event time)",
        labels=fac_labels,
    )
    for f in facilities:
        labels = [district_of[f], f]
        n_started, n_ended, n_in_use = s.visits.get(f, (0, 0, 0))
        refusals, v_today, r_today = s.facility_days.get(f, (0, 0, 0))
        started.add_metric(labels, n_started)
        ended.add_metric(labels, n_ended)
        refused.add_metric(labels, refusals)
        in_use.add_metric(labels, n_in_use)
        visits_today.add_metric(labels, v_today)
        refusals_today.add_metric(labels, r_today)
        if f in s.last_event:
            last_event.add_metric(labels, s.last_event[f].timestamp())
    yield from (started, ended, refused, in_use, visits_today, refusals_today, last_event)

    zero = (Decimal(0), Decimal(0))
    for column, name, help_text, factor in _DISTRICT_COUNTERS:
        counter = CounterMetricFamily(name, help_text, labels=["district"])
        for d in districts:
            counter.add_metric([d], float(s.district.get(d, {}).get(column, zero)[0] * factor))
        yield counter
    for column, name, help_text, factor in _DISTRICT_TODAY:
        gauge = GaugeMetricFamily(name, help_text, labels=["district"])
        for d in districts:
            gauge.add_metric([d], float(s.district.get(d, {}).get(column, zero)[1] * factor))
        yield gauge

    yield from _render_breakdowns(s, districts)
    yield from _render_stock(s, district_of)

    alerts = GaugeMetricFamily(
        "dcr_drug_alerts_open", "Drug alerts raised and still open", labels=["district"]
    )
    for d in districts:
        alerts.add_metric([d], s.open_alerts.get(d, 0))
    yield alerts
    states = GaugeMetricFamily(
        "dcr_drug_alerts_by_state",
        "Drug alerts by lifecycle state (open, acknowledged, resolved, withdrawn)",
        labels=["district", "state"],
    )
    ack = SummaryMetricFamily(
        "dcr_drug_alert_seconds_to_acknowledge",
        "From a drug alert being raised to its acknowledgement by ops (acknowledged alerts)",
        labels=["district"],
    )
    for d in districts:
        for state in ("open", "acknowledged", "resolved", "withdrawn"):
            states.add_metric([d, state], s.alert_states.get((d, state), 0))
        n, total = s.ack_seconds.get(d, (0, 0.0))
        ack.add_metric([d], count_value=n, sum_value=total)
    yield states
    yield ack

    last_record = GaugeMetricFamily(
        "dcr_read_model_last_record_timestamp_seconds",
        "Kafka timestamp of the newest record applied to the read models (all instances)",
    )
    if s.last_record is not None:
        last_record.add_metric([], s.last_record.timestamp())
    yield last_record
    yield GaugeMetricFamily(
        "dcr_domain_metrics_last_refresh_timestamp_seconds",
        "When the domain metrics were last read from the read models",
        value=s.taken_at,
    )


def _render_breakdowns(s: Snapshot, districts: Iterable[str]) -> Iterator[Metric]:
    spec = {
        "supply_item": (
            CounterMetricFamily(
                "dcr_supplies_dispensed", "Supplies dispensed", labels=["district", "item"]
            ),
            GaugeMetricFamily(
                "dcr_district_supplies_dispensed_today",
                "Supplies dispensed today",
                labels=["district", "item"],
            ),
        ),
        "incident_kind": (
            CounterMetricFamily("dcr_incidents", "Incidents", labels=["district", "kind"]),
            None,
        ),
        "incident_outcome": (
            CounterMetricFamily(
                "dcr_incident_outcomes", "Incidents by outcome", labels=["district", "outcome"]
            ),
            None,
        ),
    }
    for dimension, (counter, today) in spec.items():
        vocabulary = _BREAKDOWNS[dimension]
        keys = sorted(set(vocabulary) | {k for _, dim, k in s.breakdown if dim == dimension})
        for d in districts:
            for k in keys:
                total, n_today = s.breakdown.get((d, dimension, k), (0, 0))
                counter.add_metric([d, k], total)
                if today is not None:
                    today.add_metric([d, k], n_today)
        yield counter
        if today is not None:
            yield today


def _render_stock(s: Snapshot, district_of: Mapping[str, str]) -> Iterator[Metric]:
    labels = ["district", "facility", "item"]
    on_hand = GaugeMetricFamily(
        "dcr_stock_on_hand", "Items on hand (latest count + movements since)", labels=labels
    )
    cover = GaugeMetricFamily(
        "dcr_stock_cover_seconds",
        "How long the stock on hand lasts at the mean dispensing rate of the last 7 days",
        labels=labels,
    )
    for (facility, item), (n, used_7d) in sorted(s.stock.items()):
        district = district_of.get(facility)
        if district is None:
            continue
        on_hand.add_metric([district, facility, item], n)
        if used_7d > 0:
            cover.add_metric([district, facility, item], max(n, 0) / used_7d * 7 * _SECONDS_PER_DAY)
    yield on_hand
    yield cover


# --- the collector and its refresh task -------------------------------------------------------


class DomainMetrics:
    """One source of domain metrics: a pool to read from and the latest snapshot."""

    def __init__(
        self, pool: asyncpg.Pool, city: City, settings: ProjectionSettings, refresh_s: float
    ) -> None:
        self.pool = pool
        self.city = city
        self.settings = settings
        self.refresh_s = refresh_s
        self.snapshot: Snapshot | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def live(self) -> bool:
        return not self._stop.is_set() and not self.pool.is_closing()

    async def refresh(self) -> Snapshot | None:
        """Read a new snapshot (kept unless a rebuild is running); return it."""
        async with self.pool.acquire(timeout=10) as conn:
            snapshot = await read_snapshot(conn, self.city, self.settings)
        if snapshot is not None:
            self.snapshot = snapshot
        return snapshot

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="domain-metrics")

    async def _run(self) -> None:
        while self.live:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the last snapshot; never stop refreshing
                if not self.live:
                    break
                REFRESH_ERRORS.inc()
                log.warning(
                    "domain metrics refresh failed (%s)",
                    type(exc).__name__,
                    exc_info=not isinstance(
                        exc, OSError | TimeoutError | asyncpg.PostgresError | asyncpg.InterfaceError
                    ),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.refresh_s)

    async def aclose(self) -> None:
        """Stop refreshing and stop being rendered (idempotent)."""
        self._stop.set()
        _COLLECTOR.discard(self)
        if self._task is not None:
            task, self._task = self._task, None
            with contextlib.suppress(asyncio.CancelledError):
                await task


class DomainCollector(Collector):
    """Renders the most recently installed live source (several apps may share a process)."""

    def __init__(self) -> None:
        self._sources: dict[DomainMetrics, int] = {}  # source -> installation order
        self._installed = 0
        self.registered_in: set[int] = set()

    def add(self, source: DomainMetrics) -> None:
        self._sources = {s: n for s, n in self._sources.items() if s.live}
        self._installed += 1
        self._sources[source] = self._installed

    def discard(self, source: DomainMetrics) -> None:
        self._sources.pop(source, None)

    def current(self) -> DomainMetrics | None:
        live = [(n, s) for s, n in self._sources.items() if s.live]
        return max(live, key=lambda pair: pair[0])[1] if live else None

    def collect(self) -> Iterable[Metric]:
        source = self.current()
        if source is None:
            return []
        return render(source.snapshot, source.city)

    def describe(self) -> Iterable[Metric]:
        """Every family this collector may export (the registry checks them for clashes)."""
        example = City(
            districts=(District(id="d", name="d"),),
            facilities=(
                Facility(
                    id="f",
                    name="f",
                    district="d",
                    address="a",
                    booths=1,
                    status=FacilityStatus.PERMANENT,
                ),
            ),
        )
        now = datetime.now(UTC)
        return render(Snapshot(taken_at=0.0, today=now.date(), last_record=now), example, now)


_COLLECTOR = DomainCollector()


def install_domain_metrics(
    pool: asyncpg.Pool,
    city: City,
    settings: ProjectionSettings | None = None,
    *,
    refresh_s: float | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> DomainMetrics:
    """Export the domain metrics of the read models behind ``pool`` on ``registry``.

    Call from the projection's lifespan once the pool exists. Registers the collector on first
    use (once per registry per process), starts refreshing now (every ``refresh_s`` seconds,
    default ``DCR_DOMAIN_METRICS_REFRESH_S``) and returns the source. The refresh task ends by
    itself once the pool is closing; ``await source.aclose()`` stops it at once.
    """
    if id(registry) not in _COLLECTOR.registered_in:
        registry.register(_COLLECTOR)
        _COLLECTOR.registered_in.add(id(registry))
    source = DomainMetrics(
        pool,
        city,
        settings or ProjectionSettings(),
        refresh_s if refresh_s is not None else DomainMetricsSettings().refresh_s,
    )
    _COLLECTOR.add(source)
    source.start()
    return source
