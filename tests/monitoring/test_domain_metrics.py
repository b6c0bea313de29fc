"""services/projection/domain_metrics.py without a database: what a snapshot of the read models
renders to (names, labels, units, zeros, days of cover, opening hours), that the exposition passes
``promtool check metrics``, and which source the collector renders. (The figures read from a real
database are checked against real traffic in tests/integration/monitoring.)"""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from services.projection import domain_metrics as dm
from services.projection.settings import ProjectionSettings
from shared.city import load_city
from shared.events.vocabulary import IncidentKind, Outcome, SupplyItem
from shared.settings import CitySettings

CITY = load_city(CitySettings().file)
# Monday 2026-11-23 10:00 in Copenhagen (CET, UTC+1)
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MONDAY_03 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

SNAPSHOT = dm.Snapshot(
    taken_at=MONDAY_10.timestamp(),
    today=date(2026, 11, 23),
    visits={"halmtorv": (10, 7, 3), "nordvest": (2, 2, 0)},
    facility_days={"halmtorv": (4, 6, 1)},
    district={
        "vesterbro": {
            "overdoses": (Decimal(5), Decimal(2)),
            "street_needles_kg": (Decimal("1.25"), Decimal("0.5")),
            "visits": (Decimal(40), Decimal(6)),
        }
    },
    breakdown={
        ("vesterbro", "supply_item", "syringes"): (120, 20),
        ("vesterbro", "incident_kind", "opioid_overdose"): (5, 2),
        ("vesterbro", "incident_outcome", "recovered_on_site"): (5, 2),
    },
    stock={
        ("halmtorv", "naloxone_kits"): (6, 4),
        ("halmtorv", "swabs"): (100, 0),
        ("halmtorv", "syringes"): (-3, 10),
    },
    open_alerts={"vesterbro": 1},
    alert_states={
        ("vesterbro", "open"): 1,
        ("vesterbro", "resolved"): 2,
        ("vesterbro", "withdrawn"): 1,
    },
    ack_seconds={"vesterbro": (2, 300.0)},
    last_event={"halmtorv": MONDAY_10},
    last_record=MONDAY_10,
)


class _Fixed(Collector):
    def __init__(self, snapshot: dm.Snapshot | None, now: datetime) -> None:
        self.snapshot, self.now = snapshot, now

    def collect(self) -> Any:
        return dm.render(self.snapshot, CITY, self.now)


def exposition(snapshot: dm.Snapshot | None, now: datetime = MONDAY_10) -> str:
    registry = CollectorRegistry()
    registry.register(_Fixed(snapshot, now))
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def test_exposition_passes_promtool() -> None:
    proc = subprocess.run(
        [str(Path("/usr/bin/promtool")), "check", "metrics"],
        input=exposition(SNAPSHOT),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


def test_names_labels_and_units() -> None:
    text = exposition(SNAPSHOT)
    allowed = {"district", "facility", "item", "kind", "outcome", "state"}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("dcr_"), family.name
        for s in family.samples:
            assert set(s.labels) <= allowed, s
            if family.type == "counter":
                assert s.name.endswith("_total"), s.name
    assert value(text, "dcr_street_needles_collected_grams_total", district="vesterbro") == 1250
    assert (
        value(text, "dcr_district_street_needles_collected_grams_today", district="vesterbro")
        == 500
    )
    assert value(text, "dcr_visits_started_total", district="vesterbro", facility="halmtorv") == 10
    assert value(text, "dcr_visits_ended_total", district="vesterbro", facility="halmtorv") == 7
    assert value(text, "dcr_facility_booths_in_use", district="vesterbro", facility="halmtorv") == 3
    assert value(text, "dcr_visits_refused_total", district="vesterbro", facility="halmtorv") == 4
    assert value(text, "dcr_facility_visits_today", district="vesterbro", facility="halmtorv") == 6
    assert value(text, "dcr_overdoses_total", district="vesterbro") == 5
    assert value(text, "dcr_district_overdoses_today", district="vesterbro") == 2
    assert value(text, "dcr_drug_alerts_open", district="vesterbro") == 1
    assert value(text, "dcr_drug_alerts_by_state", district="vesterbro", state="resolved") == 2
    assert value(text, "dcr_drug_alerts_by_state", district="amager", state="acknowledged") == 0
    assert value(text, "dcr_drug_alerts_by_state", district="vesterbro", state="withdrawn") == 1
    assert value(text, "dcr_drug_alerts_by_state", district="amager", state="withdrawn") == 0
    assert value(text, "dcr_drug_alert_seconds_to_acknowledge_sum", district="vesterbro") == 300
    assert value(text, "dcr_drug_alert_seconds_to_acknowledge_count", district="vesterbro") == 2
    assert value(text, "dcr_read_model_last_record_timestamp_seconds") == MONDAY_10.timestamp()


def test_every_district_facility_and_vocabulary_key_has_a_series() -> None:
    text = exposition(SNAPSHOT)
    districts = {d.id for d in CITY.districts}
    for d in districts:
        assert value(text, "dcr_overdoses_total", district=d) is not None
        assert value(text, "dcr_district_visits_today", district=d) is not None
        for item in SupplyItem:
            assert (
                value(text, "dcr_supplies_dispensed_total", district=d, item=item.value) is not None
            )
        for kind in IncidentKind:
            assert value(text, "dcr_incidents_total", district=d, kind=kind.value) is not None
        for outcome in Outcome:
            assert (
                value(text, "dcr_incident_outcomes_total", district=d, outcome=outcome.value)
                is not None
            )
    for f in CITY.facilities:
        for name in ("dcr_visits_started_total", "dcr_facility_booths", "dcr_facility_open"):
            assert value(text, name, district=f.district, facility=f.id) is not None
    # a facility never heard from has no last-event time (not 0, not 1970)
    assert (
        value(
            text, "dcr_facility_last_event_timestamp_seconds", district="amager", facility="amager"
        )
        is None
    )


def test_days_of_cover() -> None:
    text = exposition(SNAPSHOT)
    labels = {"district": "vesterbro", "facility": "halmtorv"}
    # 6 on hand, 4 dispensed in 7 days: 10.5 days
    assert (
        value(text, "dcr_stock_cover_seconds", item="naloxone_kits", **labels) == 6 / 4 * 7 * 86400
    )
    # nothing dispensed: no rate, no cover (not infinity)
    assert value(text, "dcr_stock_cover_seconds", item="swabs", **labels) is None
    assert value(text, "dcr_stock_on_hand", item="swabs", **labels) == 100
    # more dispensed than counted: on hand shows it, cover is 0
    assert value(text, "dcr_stock_on_hand", item="syringes", **labels) == -3
    assert value(text, "dcr_stock_cover_seconds", item="syringes", **labels) == 0


def test_open_follows_opening_hours_and_never_for_planned_rooms() -> None:
    open_at_10 = exposition(None, MONDAY_10)
    open_at_3 = exposition(None, MONDAY_03)
    halmtorv = {"district": "vesterbro", "facility": "halmtorv"}  # temporary, 07-23
    assert value(open_at_10, "dcr_facility_open", **halmtorv) == 1
    assert value(open_at_3, "dcr_facility_open", **halmtorv) == 0
    planned = {"district": "vesterbro", "facility": "maendenes-hjem"}  # planned, 24 h
    assert value(open_at_10, "dcr_facility_open", **planned) == 0


def test_without_a_snapshot_only_the_city_is_rendered() -> None:
    names = {f.name for f in text_string_to_metric_families(exposition(None))}
    assert names == {"dcr_facility_booths", "dcr_facility_open"}


class _Pool:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


def test_collector_renders_the_latest_live_source() -> None:
    collector = dm.DomainCollector()
    assert list(collector.collect()) == []
    pools = [_Pool(), _Pool()]
    sources = [
        dm.DomainMetrics(p, CITY, ProjectionSettings(), 5.0)  # type: ignore[arg-type]
        for p in pools
    ]
    for s in sources:
        collector.add(s)
    assert collector.current() is sources[1]
    pools[1].closing = True
    assert collector.current() is sources[0]
    collector.discard(sources[0])
    assert collector.current() is None


def test_collector_names_do_not_clash_with_the_services_metrics() -> None:
    import services.incident.app
    import services.intake.app
    import services.projection.app
    import services.supply.app  # noqa: F401  (their metrics are module-level in REGISTRY)

    fresh = CollectorRegistry()
    fresh.register(dm.DomainCollector())  # describe() names every family
    ours = set(fresh._names_to_collectors)
    assert {"dcr_visits_started_total", "dcr_stock_cover_seconds"} <= ours
    assert all(n.startswith("dcr_") for n in ours)
    taken = {
        name
        for name, collector in REGISTRY._names_to_collectors.items()
        if not isinstance(collector, dm.DomainCollector)
    }
    assert ours & taken == set()
