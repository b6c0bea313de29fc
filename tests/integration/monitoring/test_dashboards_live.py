"""PROOF that the dashboards and alerts work: the platform runs for real and a real Prometheus
scrapes it with the repository's rules, then

* every PromQL target of every dashboard panel parses and returns at least one series, and every
  metric it names is exposed by a service;
* every SQL target of every dashboard runs against the real read models as Grafana's read-only
  role ``dcr_reader`` (migration 020's grants) and returns rows (time series: time/metric/value);
* every alert expression evaluates, its ``probe`` annotation returns series and every metric it
  names is exposed; Prometheus loads and evaluates every rule without error;
* the domain metrics equal what was sent through the APIs (exact), and today's gauges equal the
  read models;
* ``dcr_reader`` can not read visit-level rows (any column of ``visits``), ingest records or
  the frozen unsuppressed public figures.

Setup (module fixture ``live``): an isolated database and topic prefix; the four services as
uvicorn processes on free ports; Prometheus (/usr/bin/prometheus) scraping them every second
with deploy/prometheus/prometheus.yml's jobs and rules/*.yml; traffic through the public APIs
(visits, refusals, supplies, stock, sharps, a street sweep, overdoses, a drug check that raises a
drug alert, a 401, a 422); then a duplicate and an unusable record straight into Kafka (a
duplicate skip and a dead letter). Readiness is polled against deadlines; every process is
stopped at the end whatever happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from harness.process import ChildProcess
from shared.kafka.topics import VISITS
from tests.integration.monitoring.exposition import label_problems, promtool_check
from tests.integration.monitoring.stack import (
    PromClient,
    Traffic,
    reader_dsn,
    send_traffic,
    start_prometheus,
    start_services,
)
from tests.monitoring import dashboards as dash
from tests.support import poll_until, read_topic, scrape_auth

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

TARGETS = dash.targets()
PROM_TARGETS = [t for t in TARGETS if t.kind == "prometheus"]
SQL_TARGETS = [t for t in TARGETS if t.kind == "sql"]
RULES = dash.rules()
ZONE = ZoneInfo("Europe/Copenhagen")


@dataclass
class Live:
    env: TestEnv
    prom: PromClient
    traffic: Traffic
    reader_dsn: str
    urls: dict[str, str]


async def _applied(dsn: str, expected: int) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        n = await conn.fetchval("SELECT count(*) FROM projection_events")
    finally:
        await conn.close()
    return bool(n >= expected)


async def _inject_duplicate_and_garbage(env: TestEnv) -> None:
    """Re-send a visit record as is (the projection must skip it) and send an unusable one
    (the projection must dead-letter it)."""
    topic = env.topic(VISITS)
    original = (await read_topic(env.bootstrap, topic))[0]
    producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            value=original.value,
            key=original.key,
            headers=list(original.headers.items()),
        )
        await producer.send_and_wait(topic, value=b"{not json", key=b"halmtorv", headers=[])
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
async def live(iso_env: TestEnv, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    work = tmp_path_factory.mktemp("monitoring-live")
    procs: list[ChildProcess] = []
    prom: PromClient | None = None
    try:
        services = start_services(iso_env, work, {"DCR_DOMAIN_METRICS_REFRESH_S": "1"})
        procs += services.values()
        for proc in services.values():
            await proc.wait_healthy(timeout=60)
        urls = {name: proc.url for name, proc in services.items()}
        ports = {name: proc.port for name, proc in services.items()}
        prom_proc, prom_url = start_prometheus(ports, work, iso_env.tokens["prometheus"])
        procs.append(prom_proc)
        prom = PromClient(prom_url)
        await wait_healthy_prometheus(prom_proc, prom)

        traffic = await send_traffic(iso_env, urls)
        # every accepted event and the drug alert the incident service raised are applied
        await poll_until(
            lambda: _applied(iso_env.dsn, traffic.accepted + 1),
            timeout=60,
            interval=0.25,
            what="the projection to apply every event and the drug alert",
        )
        await _inject_duplicate_and_garbage(iso_env)

        async def all_up() -> bool:
            assert prom is not None
            up = await prom.targets_up()
            return len(up) == 6 and set(up.values()) == {"up"}

        await poll_until(all_up, timeout=30, interval=0.25, what="every target up")
        expected_visits = sum(traffic.visits_started.values())

        async def scraped() -> bool:
            assert prom is not None
            visits = await prom.value("sum(max by (facility) (dcr_visits_started_total))")
            dead = await prom.query("dcr_deadlettered_records_total")
            dupes = await prom.query("dcr_projection_duplicate_events_total")
            return visits == expected_visits and bool(dead) and bool(dupes)

        await poll_until(
            scraped, timeout=60, interval=0.25, what="domain metrics, dead letter, duplicate"
        )
        yield Live(iso_env, prom, traffic, reader_dsn(iso_env.dsn), urls)
    finally:
        for p in reversed(procs):
            p.terminate(grace=20)
        if prom is not None:
            await prom.aclose()


async def wait_healthy_prometheus(proc: ChildProcess, prom: PromClient) -> None:
    async def ready() -> bool:
        assert proc.alive, f"prometheus exited:\n{proc.log()}"
        try:
            return (await prom.http.get(f"{prom.url}/-/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    await poll_until(ready, timeout=30, interval=0.2, what="prometheus ready")


async def _series(prom: PromClient, expr: str) -> list[dict[str, Any]]:
    """The query's result once it has series (a rate needs two scrapes), else fail."""
    return await poll_until(lambda: prom.query(expr), timeout=30, interval=0.5, what=expr)


async def _assert_metrics_exposed(prom: PromClient, expr: str) -> None:
    missing = [n for n in sorted(dash.metric_names(expr)) if not await prom.known_metric(n)]
    assert not missing, f"metrics no service exposes: {missing} in {expr}"


# --- the platform is scraped -------------------------------------------------------------------


async def test_every_service_and_prometheus_itself_is_scraped(live: Live) -> None:
    assert await live.prom.targets_up() == {
        "prometheus": "up",
        "intake": "up",
        "supply": "up",
        "incident": "up",
        "projection": "up",
        "public": "up",
    }


@pytest.mark.parametrize("service", ["intake", "supply", "incident", "projection"])
async def test_each_service_process_exposition_passes_promtool(live: Live, service: str) -> None:
    """Each process's own exposition (the projection's with its domain metrics)."""
    async with httpx.AsyncClient(timeout=10) as c:
        text = (await c.get(f"{live.urls[service]}/metrics", headers=scrape_auth(live.env))).text
    assert await asyncio.to_thread(promtool_check, text) == ""
    problems = label_problems(text, frozenset(live.traffic.client_codes | live.traffic.issued_ids))
    assert problems == [], problems
    if service == "projection":
        assert "\ndcr_visits_started_total{" in text


# --- dashboards --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", PROM_TARGETS, ids=[t.id for t in PROM_TARGETS])
async def test_dashboard_promql_returns_series(live: Live, target: dash.Target) -> None:
    expr = dash.promql(target.query)
    result = await _series(live.prom, expr)
    assert result, expr
    await _assert_metrics_exposed(live.prom, expr)


@pytest.mark.parametrize("target", SQL_TARGETS, ids=[t.id for t in SQL_TARGETS])
async def test_dashboard_sql_returns_rows_as_grafana_reader(
    live: Live, target: dash.Target
) -> None:
    now = datetime.now(UTC)
    query = dash.sql(target.query, now - timedelta(days=7), now)
    conn = await asyncpg.connect(live.reader_dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == "dcr_reader"
        async with conn.transaction(readonly=True):
            rows = await conn.fetch(query)
    finally:
        await conn.close()
    assert rows, f"no rows: {query}"
    if target.fmt == "time_series":
        assert list(rows[0].keys()) == ["time", "metric", "value"], rows[0].keys()
        assert all(isinstance(r["time"], datetime) for r in rows)
        assert all(isinstance(r["metric"], str) for r in rows)


# --- alert rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
async def test_alert_expression_evaluates_and_its_probe_has_series(
    live: Live, rule: dash.Rule
) -> None:
    await live.prom.query(rule.expr)  # parses and evaluates (empty while all is well)
    assert rule.probe, f"{rule.name} has no probe annotation"
    assert await _series(live.prom, rule.probe), rule.probe
    await _assert_metrics_exposed(live.prom, rule.expr)


async def test_prometheus_loads_and_evaluates_every_rule(live: Live) -> None:
    async def evaluated() -> list[dict[str, Any]] | None:
        r = await live.prom.http.get(f"{live.prom.url}/api/v1/rules")
        loaded = [rule for g in r.json()["data"]["groups"] for rule in g["rules"]]
        done = all(not rule["lastEvaluation"].startswith("0001") for rule in loaded)
        return loaded if done else None

    loaded = await poll_until(evaluated, timeout=30, interval=0.5, what="rules evaluated")
    assert loaded is not None
    assert sorted(r["name"] for r in loaded) == sorted(r.name for r in RULES)
    unhealthy = {r["name"]: r.get("lastError") for r in loaded if r["health"] != "ok"}
    assert unhealthy == {}


# --- the figures are right ---------------------------------------------------------------------


async def _by(prom: PromClient, expr: str, *labels: str) -> dict[Any, float]:
    out: dict[Any, float] = {}
    for s in await prom.query(expr):
        key = tuple(s["metric"][label] for label in labels)
        value = float(s["value"][1])
        if value:
            out[key[0] if len(key) == 1 else key] = value
    return out


async def test_domain_counters_equal_the_traffic(live: Live) -> None:
    p, t = live.prom, live.traffic
    assert await _by(p, "max by (facility) (dcr_visits_started_total)", "facility") == {
        k: float(v) for k, v in t.visits_started.items()
    }
    assert await _by(p, "max by (facility) (dcr_visits_ended_total)", "facility") == {
        k: float(v) for k, v in t.visits_ended.items()
    }
    assert await _by(p, "max by (facility) (dcr_visits_refused_total)", "facility") == {
        k: float(v) for k, v in t.refusals.items()
    }
    assert await _by(
        p, "max by (district, item) (dcr_supplies_dispensed_total)", "district", "item"
    ) == {k: float(v) for k, v in t.dispensed.items()}
    assert await _by(p, "max by (district, kind) (dcr_incidents_total)", "district", "kind") == {
        k: float(v) for k, v in t.incidents.items()
    }
    for metric, expected in (
        ("dcr_overdoses_total", t.overdoses),
        ("dcr_life_threatening_incidents_total", t.life_threatening),
        ("dcr_naloxone_doses_total", t.naloxone_doses),
        ("dcr_sharps_returned_total", t.sharps_returned),
        ("dcr_sharps_returned_grams_total", t.sharps_returned_grams),
        ("dcr_street_needles_collected_total", t.street_needles),
        ("dcr_street_needles_collected_grams_total", t.street_needles_grams),
    ):
        got = await _by(p, f"max by (district) ({metric})", "district")
        assert got == {k: float(v) for k, v in expected.items() if v}, metric
    outcomes = await _by(p, "max by (outcome) (dcr_incident_outcomes_total)", "outcome")
    assert outcomes == {"recovered_on_site": 2.0, "left": 1.0, "transferred_to_hospital": 1.0}
    assert await _by(p, "max by (district) (dcr_drug_alerts_open)", "district") == {
        "vesterbro": 1.0
    }
    # booths in use: visits started and not ended
    in_use = await _by(p, "max by (facility) (dcr_facility_booths_in_use)", "facility")
    assert in_use == {f: float(n - t.visits_ended.get(f, 0)) for f, n in t.visits_started.items()}
    # stock at halmtorv: counted, then delivered and dispensed after the count
    on_hand = await _by(p, 'max by (item) (dcr_stock_on_hand{facility="halmtorv"})', "item")
    assert on_hand == {"naloxone_kits": 6.0, "syringes": 480.0, "needles": 480.0, "swabs": 100.0}
    cover = await _by(p, 'max by (item) (dcr_stock_cover_seconds{facility="halmtorv"})', "item")
    assert cover["naloxone_kits"] == pytest.approx(6 / 4 * 7 * 86400)
    assert "swabs" not in cover  # nothing dispensed: no rate, no cover
    # freshness: the newest applied record is recent
    age = await p.value("time() - max(dcr_read_model_last_record_timestamp_seconds)")
    assert age is not None and 0 <= age < 300


async def test_today_gauges_equal_the_read_models(live: Live) -> None:
    """The ``*_today`` gauges equal the read model's row of the city's current day. No clock
    condition: if midnight passes between the traffic and the scrape, "today" is the new day on
    both sides (the comparison is polled, so the gauges' scrape may lag)."""
    metrics = (
        ("visits", "dcr_district_visits_today"),
        ("unique_clients", "dcr_district_unique_clients_today"),
        ("overdoses", "dcr_district_overdoses_today"),
        ("life_threatening", "dcr_district_life_threatening_incidents_today"),
    )

    async def read_model(day: date) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(live.env.dsn)
        try:
            return await conn.fetch(
                "SELECT district, visits, unique_clients, overdoses, life_threatening "
                "FROM district_daily WHERE day = $1",
                day,
            )
        finally:
            await conn.close()

    today = datetime.now(ZONE).date()
    # the traffic (one minute before the session's first test) is today's, or yesterday's
    assert await read_model(today) or await read_model(today - timedelta(days=1))

    wrong: dict[str, Any] = {}

    async def equal() -> bool:
        rows = await read_model(datetime.now(ZONE).date())
        wrong.clear()
        for column, metric in metrics:
            got = await _by(live.prom, f"max by (district) ({metric})", "district")
            expected = {r["district"]: float(r[column]) for r in rows if r[column]}
            if got != expected:
                wrong[metric] = {"gauge": got, "read model": expected}
        return not wrong

    try:
        await poll_until(equal, timeout=30, interval=0.5, what="today gauges == read model")
    except AssertionError:
        raise AssertionError(f"today gauges != read model: {wrong}") from None


async def test_no_label_value_is_a_client_code_or_an_issued_id(live: Live) -> None:
    r = await live.prom.http.get(f"{live.prom.url}/api/v1/labels")
    forbidden = live.traffic.client_codes | live.traffic.issued_ids
    for label in r.json()["data"]:
        values = await live.prom.http.get(f"{live.prom.url}/api/v1/label/{label}/values")
        leaked = forbidden & set(values.json()["data"])
        assert not leaked, f"label {label} holds {leaked}"


# --- Grafana's database role -------------------------------------------------------------------


async def test_grafana_reader_cannot_read_private_data(live: Live) -> None:
    conn = await asyncpg.connect(live.reader_dsn)
    try:
        assert await conn.fetchval("SELECT sum(check_ins) FROM facility_checkins_hourly") > 0
        for forbidden in (
            "SELECT client_pseudonym FROM visits",
            "SELECT visit_id FROM visits",
            "SELECT * FROM visits",
            "SELECT count(*) FROM visits",  # aggregates only: no visit-level rows at all
            "SELECT facility, start_time, end_time FROM visits",
            "SELECT substances, route, first_visit FROM visits",
            "SELECT * FROM public_releases",
            "SELECT * FROM ingest_idempotency",
            "SELECT * FROM projection_events",
            "SELECT * FROM alert_episodes",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(forbidden)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM district_daily")
    finally:
        await conn.close()
