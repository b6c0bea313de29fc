#!/usr/bin/env python3
"""Generate the Grafana dashboards of dcr-platform (Grafana 11 JSON model, schemaVersion 39).

    .venv/bin/python deploy/grafana/generate.py          # write deploy/grafana/dashboards/*.json
    .venv/bin/python deploy/grafana/generate.py --check  # exit 1 if the committed JSON differs

The panels, queries and dashboards are built with ``grafana-foundation-sdk``'s builders (stat,
timeseries, bargauge, table, rows, Prometheus queries, custom variables); the SDK has no builder for
the ``grafana-postgresql-datasource`` query, so :class:`PostgresQuery` is a small adapter that
implements the SDK's dataquery/builder protocol. The generated JSON is committed (Grafana
provisions it from files); tests/monitoring checks that it equals this script's output, and
tests/integration/monitoring/test_dashboards_live.py runs every PromQL target against a real
Prometheus scraping the real services and every SQL target against the real read models as
Grafana's user ``dcr_reader``.

Conventions:

* Data sources are referenced by uid: :data:`PROMETHEUS` (``dcr-prometheus``) and :data:`POSTGRES`
  (``dcr-postgres``), provisioned by ``provisioning/datasources/dcr.yml``.
* Domain metrics are exported identically by every projection instance (they are read from the
  shared read models), so PromQL takes ``max by (...)`` over instances before summing.
* District and facility variables are custom lists generated from ``deploy/city.yaml`` (ids are
  the values, names the labels), so a new facility shows up when the dashboards are regenerated.
* SQL reads only what migration 020 grants ``dcr_reader``; calendar days are the city's
  (``day`` columns), drawn at local midnight. Dashboards are for the city's staff (Grafana login),
  so counts are not suppressed like the public read API's.
"""

# The SQL built here is dashboard text for Grafana, never executed by this script; the only
# interpolated values are ids and names from deploy/city.yaml (quoted by _sql_text).
# ruff: noqa: S608

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeAlias, TypeVar

import yaml
from grafana_foundation_sdk.builders import bargauge as sdk_bargauge
from grafana_foundation_sdk.builders import common as sdk_common
from grafana_foundation_sdk.builders import dashboard as sdk_dashboard
from grafana_foundation_sdk.builders import prometheus as sdk_prometheus
from grafana_foundation_sdk.builders import stat as sdk_stat
from grafana_foundation_sdk.builders import table as sdk_table
from grafana_foundation_sdk.builders import timeseries as sdk_timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models.prometheus import QueryEditorMode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "dashboards"
CITY_FILE = ROOT / "deploy" / "city.yaml"

PROMETHEUS = dashboard.DataSourceRef(type_val="prometheus", uid="dcr-prometheus")
POSTGRES = dashboard.DataSourceRef(type_val="grafana-postgresql-datasource", uid="dcr-postgres")
SCHEMA_VERSION = 39
TAG = "dcr"
#: Requests that are not API traffic (scrapes, health checks).
API = 'route!~"/metrics|/healthz"'
REF_IDS = "ABCDEFGHIJ"

Json = dict[str, Any]
Query: TypeAlias = "sdk_prometheus.Dataquery | PostgresQuery"
AnyPanel: TypeAlias = "sdk_stat.Panel | sdk_timeseries.Panel | sdk_bargauge.Panel | sdk_table.Panel"
P = TypeVar("P", sdk_stat.Panel, sdk_timeseries.Panel, sdk_bargauge.Panel, sdk_table.Panel)
#: Threshold steps as (colour, from value); the first step's value is None (from -infinity).
Steps = Sequence[tuple[str, float | None]]


# --- queries ----------------------------------------------------------------------------------


def prom(expr: str, legend: str = "", *, instant: bool = False) -> sdk_prometheus.Dataquery:
    """A PromQL target in code mode; range unless ``instant``."""
    query = (
        sdk_prometheus.Dataquery()
        .datasource(PROMETHEUS)
        .editor_mode(QueryEditorMode.CODE)
        .expr(expr)
        .legend_format(legend or "__auto")
    )
    return query.instant() if instant else query.range()


class PostgresTarget(cogvariants.Dataquery):
    """The target JSON of Grafana's ``grafana-postgresql-datasource`` in raw-SQL code mode."""

    def __init__(self, raw_sql: str, fmt: str) -> None:
        self.raw_sql = raw_sql
        self.fmt = fmt
        self.ref_id = ""

    def to_json(self) -> Json:
        return {
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "format": self.fmt,
            "rawQuery": True,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class PostgresQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """Adapter: grafana-foundation-sdk has no builder for the PostgreSQL data source's query, so
    this one implements the SDK's ``Builder[Dataquery]`` protocol (``build()`` returning an object
    with ``to_json()``) and panels take it like the SDK's own Prometheus query builder."""

    def __init__(self, raw_sql: str, fmt: str = "table") -> None:
        self._internal = PostgresTarget(" ".join(raw_sql.split()), fmt)

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def build(self) -> PostgresTarget:
        return self._internal


def sql(raw: str, fmt: str = "table") -> PostgresQuery:
    """A raw SQL target; ``fmt`` is ``table`` or ``time_series`` (columns time, metric, value)."""
    return PostgresQuery(raw, fmt)


def _datasource(query: Query) -> dashboard.DataSourceRef:
    return POSTGRES if isinstance(query, PostgresQuery) else PROMETHEUS


# --- panels -----------------------------------------------------------------------------------


def _thresholds(steps: Steps) -> sdk_dashboard.ThresholdsConfig:
    return (
        sdk_dashboard.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps([dashboard.Threshold(value=value, color=color) for color, value in steps])
    )


def _value_mappings(texts: Mapping[str, tuple[str, str]]) -> list[dashboard.ValueMapping]:
    """Value -> (text, colour) as one value mapping."""
    options = {
        value: dashboard.ValueMappingResult(text=text, color=color)
        for value, (text, color) in texts.items()
    }
    return [dashboard.ValueMap(options=options)]


def _common(
    panel: P,
    title: str,
    targets: Sequence[Query],
    *,
    description: str = "",
    unit: str = "short",
    decimals: int | None = None,
    thresholds: Steps = (),
    mappings: Mapping[str, tuple[str, str]] | None = None,
) -> P:
    """Title, description, targets (refIds A, B, ...), data source of the first target, unit,
    and the optional decimals, thresholds and value mappings every panel kind shares."""
    panel.title(title).description(description).datasource(_datasource(targets[0])).unit(unit)
    for ref, target in zip(REF_IDS, targets, strict=False):
        panel.with_target(target.ref_id(ref))
    if decimals is not None:
        panel.decimals(decimals)
    if thresholds:
        panel.thresholds(_thresholds(thresholds))
    if mappings:
        panel.mappings(_value_mappings(mappings))
    return panel


def _last_value() -> sdk_common.ReduceDataOptions:
    return sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def _color(mode: dashboard.FieldColorModeId) -> sdk_dashboard.FieldColor:
    return sdk_dashboard.FieldColor().mode(mode)


def _legend_and_tooltip(panel: sdk_timeseries.Panel) -> sdk_timeseries.Panel:
    return panel.legend(
        sdk_common.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    ).tooltip(
        sdk_common.VizTooltipOptions()
        .mode(common.TooltipDisplayMode.MULTI)
        .sort(common.SortOrder.DESCENDING)
    )


def stat(
    title: str, target: Query, *, thresholds: Steps = (("blue", None),), **kw: Any
) -> sdk_stat.Panel:
    """The last value, coloured by ``thresholds`` (blue unless given); whole numbers unless
    ``decimals`` says otherwise."""
    kw.setdefault("decimals", 0)
    panel = (
        sdk_stat.Panel()
        .reduce_options(_last_value())
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .text_mode(common.BigValueTextMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
        .color_scheme(_color(dashboard.FieldColorModeId.THRESHOLDS))
    )
    return _common(panel, title, [target], thresholds=thresholds, **kw)


def _series_panel(
    style: common.GraphDrawStyle, fill_opacity: int, points: common.VisibilityMode
) -> sdk_timeseries.Panel:
    """A time series panel in classic palette colours, with a list legend and a multi-series
    tooltip (lines and bars differ only in style, fill and points)."""
    panel = (
        sdk_timeseries.Panel()
        .draw_style(style)
        .line_width(1)
        .fill_opacity(fill_opacity)
        .show_points(points)
        .color_scheme(_color(dashboard.FieldColorModeId.PALETTE_CLASSIC))
    )
    return _legend_and_tooltip(panel)


def timeseries(
    title: str, *targets: Query, stacked: bool = False, **kw: Any
) -> sdk_timeseries.Panel:
    """Lines (stacked if ``stacked``)."""
    panel = _series_panel(common.GraphDrawStyle.LINE, 10, common.VisibilityMode.AUTO)
    if stacked:
        panel.stacking(sdk_common.StackingConfig().mode(common.StackingMode.NORMAL).group("A"))
    return _common(panel, title, targets, **kw)


def bars(title: str, *targets: Query, **kw: Any) -> sdk_timeseries.Panel:
    """Daily figures from SQL, drawn as bars (one per local day), whole numbers by default."""
    kw.setdefault("decimals", 0)
    panel = _series_panel(common.GraphDrawStyle.BARS, 70, common.VisibilityMode.NEVER)
    return _common(panel, title, targets, **kw)


def bargauge(title: str, target: Query, **kw: Any) -> sdk_bargauge.Panel:
    """Horizontal bars of the last values, from 0, whole numbers unless ``decimals`` is given."""
    kw.setdefault("decimals", 0)
    panel = (
        sdk_bargauge.Panel()
        .reduce_options(_last_value())
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .show_unfilled(True)
        .color_scheme(_color(dashboard.FieldColorModeId.PALETTE_CLASSIC))
        .min(0)
    )
    return _common(panel, title, [target], thresholds=(("blue", None),), **kw)


def table(title: str, target: Query, **kw: Any) -> sdk_table.Panel:
    """Rows of a query with a header, small cells and no footer."""
    panel = (
        sdk_table.Panel()
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .footer(sdk_common.TableFooterOptions().show(False))
    )
    return _common(panel, title, [target], **kw)


# --- dashboards -------------------------------------------------------------------------------


class Layout:
    """Places rows and panels left to right on Grafana's 24-column grid, wrapping a panel that
    would cross the right edge to a new line. Positions are set explicitly (the SDK's own
    placement lets a panel overflow the edge instead of wrapping)."""

    def __init__(self) -> None:
        self.items: list[cogbuilder.Builder[dashboard.Panel] | sdk_dashboard.Row] = []
        self._x = 0
        self._y = 0
        self._row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        position = dashboard.GridPos(h=1, w=24, x=0, y=self._y)
        self.items.append(sdk_dashboard.Row(title).grid_pos(position))
        self._y += 1

    def add(self, panel: AnyPanel, w: int, h: int) -> None:
        if self._x + w > 24:
            self._newline()
        self.items.append(panel.grid_pos(dashboard.GridPos(h=h, w=w, x=self._x, y=self._y)))
        self._x += w
        self._row_h = max(self._row_h, h)

    def _newline(self) -> None:
        self._y += self._row_h
        self._x = 0
        self._row_h = 0


def _dashboard_links() -> sdk_dashboard.DashboardLink:
    """A drop-down of every dashboard tagged ``dcr``, keeping the time range."""
    return (
        sdk_dashboard.DashboardLink("DCR dashboards")
        .type(dashboard.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .include_vars(False)
        .keep_time(True)
    )


def dashboard_model(
    uid: str,
    title: str,
    description: str,
    layout: Layout,
    *,
    timezone: str,
    time_from: str = "now-7d",
    variables: Sequence[sdk_dashboard.CustomVariable] = (),
) -> dashboard.Dashboard:
    """A read-only dashboard tagged ``dcr``, shared crosshair, refreshed every 30 s, weeks from
    Monday, panels numbered 1, 2, ... in layout order. No annotation is listed: Grafana adds its
    built-in "Annotations & Alerts" to every dashboard that lacks one (the SDK's annotation
    model cannot mark one built in)."""
    board = (
        sdk_dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .timezone(timezone)
        .readonly()
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .fiscal_year_start_month(0)
        .live_now(False)
        .refresh("30s")
        .version(1)
        .week_start("monday")
        .time(time_from, "now")
        .link(_dashboard_links())
        .variables(list(variables))
    )
    for item in layout.items:
        if isinstance(item, sdk_dashboard.Row):
            board.with_row(item)
        else:
            board.with_panel(item)
    model = board.build()
    model.schema_version = SCHEMA_VERSION
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    return model


def custom_variable(
    name: str, label: str, options: Sequence[tuple[str, str]]
) -> sdk_dashboard.CustomVariable:
    """A single-value custom variable: ``options`` are (value, text) pairs, the first selected."""
    first_value, first_text = options[0]
    return (
        sdk_dashboard.CustomVariable(name)
        .label(label)
        .values(",".join(f"{text} : {value}" for value, text in options))
        .current(dashboard.VariableOption(selected=True, text=first_text, value=first_value))
        .options(
            [
                dashboard.VariableOption(selected=i == 0, text=text, value=value)
                for i, (value, text) in enumerate(options)
            ]
        )
        .multi(False)
        .include_all(False)
        .hide(dashboard.VariableHide.DONT_HIDE)
    )


# --- the city ---------------------------------------------------------------------------------


class City:
    def __init__(self, path: Path) -> None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.timezone: str = data["timezone"]
        self.districts: list[tuple[str, str]] = [(d["id"], d["name"]) for d in data["districts"]]
        self.facilities: list[tuple[str, str, str]] = [
            (f["id"], f["name"], f["district"]) for f in data["facilities"]
        ]

    def local_day(self, column: str) -> str:
        """SQL: a ``date`` column as the timestamp of that local midnight."""
        return f"({column}::timestamp AT TIME ZONE '{self.timezone}')"

    def days_in_range(self, column: str) -> str:
        """SQL: a ``date`` column (a local day) within the dashboard's time range, the range's
        ends taken as local days. Grafana's ``$__timeFilter`` compares with UTC instants, which
        cast to the UTC date: between local and UTC midnight it would drop today's local day."""
        start, end = (
            f"(${macro}()::timestamptz AT TIME ZONE '{self.timezone}')::date"
            for macro in ("__timeFrom", "__timeTo")
        )
        return f"{column} BETWEEN {start} AND {end}"

    def today(self) -> str:
        return f"(now() AT TIME ZONE '{self.timezone}')::date"

    def district_values(self) -> str:
        rows = ", ".join(f"('{i}', '{_sql_text(n)}')" for i, n in self.districts)
        return f"(VALUES {rows}) AS c(district, name)"

    def facility_values(self) -> str:
        rows = ", ".join(f"('{i}', '{_sql_text(n)}', '{d}')" for i, n, d in self.facilities)
        return f"(VALUES {rows}) AS c(facility, name, district)"


def _sql_text(s: str) -> str:
    return s.replace("'", "''")


# --- dashboards -------------------------------------------------------------------------------


def _city_today_whole_city_row(d: Layout) -> None:
    """The "Today, whole city" row: people and incidents, supplies, alerts and rooms."""
    d.row("Today, whole city")
    today = [
        ("Visits", "dcr_district_visits_today", "Visits started today in every room."),
        (
            "Unique clients",
            "dcr_district_unique_clients_today",
            "Sum of the districts' distinct clients today (client codes are per facility, so a "
            "person visiting two districts counts twice).",
        ),
        ("Overdoses treated", "dcr_district_overdoses_today", "Opioid overdoses and overamping."),
        (
            "Lives probably saved",
            "dcr_district_life_threatening_incidents_today",
            "Incidents staff judged life-threatening: the person would probably have died "
            "without treatment.",
        ),
        ("Naloxone doses", "dcr_district_naloxone_doses_today", "Naloxone doses given today."),
        ("Refusals", "dcr_district_refusals_today", "Clients turned away today."),
    ]
    for title, metric, description in today:
        query = prom(f"sum(max by (district) ({metric}))")
        d.add(stat(title, query, description=description), w=4, h=4)
    _city_supply_today_panels(d)
    _city_alerts_and_rooms_now_panels(d)


def _city_supply_today_panels(d: Layout) -> None:
    """Needles and syringes out, sharps returned, street needles collected."""
    d.add(
        stat(
            "Needles & syringes out",
            prom(
                "sum(max by (district, item) "
                '(dcr_district_supplies_dispensed_today{item=~"syringes|needles"}))'
            ),
            description="Needles and syringes dispensed today.",
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Sharps returned",
            prom("sum(max by (district) (dcr_district_sharps_returned_today))"),
            description="Used needles and syringes returned to the rooms today.",
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Street needles collected",
            prom(
                "sum(max by (district) (dcr_district_street_needles_collected_grams_today)) / 1000"
            ),
            unit="masskg",
            decimals=2,
            description="Weight of needles the sanitation teams collected in the street today.",
        ),
        w=4,
        h=4,
    )


def _city_alerts_and_rooms_now_panels(d: Layout) -> None:
    """Open drug alerts, booths in use, rooms open."""
    d.add(
        stat(
            "Open drug alerts",
            prom("sum(max by (district) (dcr_drug_alerts_open))"),
            description="Drug alerts raised (overdose clusters, adulterants found) and open.",
            thresholds=[("green", None), ("red", 1)],
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Booths in use",
            prom("sum(max by (facility) (dcr_facility_booths_in_use))"),
            description="Visits started and not ended, all rooms.",
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Rooms open now",
            prom("sum(max by (facility) (dcr_facility_open))"),
            description="Rooms within their opening hours (planned rooms excluded).",
        ),
        w=4,
        h=4,
    )


def _city_per_district_today_row(d: Layout, city: City) -> None:
    """The "Per district, today" row."""
    d.row("Per district, today")
    d.add(
        table(
            "Districts today",
            sql(
                f"""SELECT c.name AS "District",
                       coalesce(d.visits, 0) AS "Visits",
                       coalesce(d.unique_clients, 0) AS "Unique clients",
                       coalesce((SELECT sum(b.n) FROM district_daily_breakdown b
                                 WHERE b.district = c.district AND b.day = {city.today()}
                                   AND b.dimension = 'supply_item'
                                   AND b.key IN ('syringes', 'needles')), 0)
                         AS "Needles out",
                       coalesce(d.sharps_returned_count, 0) AS "Sharps returned",
                       coalesce(d.overdoses, 0) AS "Overdoses treated",
                       coalesce(d.life_threatening, 0) AS "Lives probably saved",
                       coalesce(d.naloxone_doses, 0) AS "Naloxone doses",
                       coalesce(d.street_needles_kg, 0) AS "Street needles (kg)"
                FROM {city.district_values()}
                LEFT JOIN district_daily d ON d.district = c.district AND d.day = {city.today()}
                ORDER BY c.name"""
            ),
            description="Today's figures per district, from the read models.",
        ),
        w=16,
        h=7,
    )
    d.add(
        bargauge(
            "Visits today by district",
            prom("max by (district) (dcr_district_visits_today)", "{{district}}", instant=True),
        ),
        w=8,
        h=7,
    )


def _city_trends_per_day_row(d: Layout, city: City) -> None:
    """The "Trends per day" row: visits and clients, supplies, incidents, hours."""
    d.row("Trends per day")
    _city_visit_trend_panels(d, city)
    _city_supply_and_incident_trend_panels(d, city)
    _city_hourly_visits_panel(d)


def _city_visit_trend_panels(d: Layout, city: City) -> None:
    """Visits and unique clients per day."""
    d.add(
        bars(
            "Visits per day",
            sql(
                f"""SELECT {city.local_day("day")} AS time, district AS metric, visits AS value
                FROM district_daily WHERE {city.days_in_range("day")} ORDER BY 1, 2""",
                "time_series",
            ),
        ),
        w=12,
        h=8,
    )
    d.add(
        bars(
            "Unique clients per day",
            sql(
                f"""SELECT {city.local_day("day")} AS time, district AS metric,
                       unique_clients AS value
                FROM district_daily WHERE {city.days_in_range("day")} ORDER BY 1, 2""",
                "time_series",
            ),
        ),
        w=12,
        h=8,
    )


def _city_supply_and_incident_trend_panels(d: Layout, city: City) -> None:
    """Needles out vs returned, overdoses and lives saved, street needles per day."""
    d.add(
        bars(
            "Needles out vs returned per day",
            sql(
                f"""SELECT time, metric, value FROM (
                    SELECT {city.local_day("day")} AS time,
                           'needles & syringes out' AS metric, sum(n) AS value
                    FROM district_daily_breakdown
                    WHERE dimension = 'supply_item' AND key IN ('syringes', 'needles')
                      AND {city.days_in_range("day")}
                    GROUP BY day
                    UNION ALL
                    SELECT {city.local_day("day")}, 'sharps returned', sum(sharps_returned_count)
                    FROM district_daily WHERE {city.days_in_range("day")} GROUP BY day) t
                ORDER BY 1, 2""",
                "time_series",
            ),
            description="Whole city. Returned sharps are counted where reported as a count.",
        ),
        w=12,
        h=8,
    )
    d.add(
        bars(
            "Overdoses treated and lives probably saved per day",
            sql(
                f"""SELECT time, metric, value FROM (
                    SELECT {city.local_day("day")} AS time, 'overdoses treated' AS metric,
                           sum(overdoses) AS value
                    FROM district_daily WHERE {city.days_in_range("day")} GROUP BY day
                    UNION ALL
                    SELECT {city.local_day("day")}, 'lives probably saved', sum(life_threatening)
                    FROM district_daily WHERE {city.days_in_range("day")} GROUP BY day
                    UNION ALL
                    SELECT {city.local_day("day")}, 'naloxone doses', sum(naloxone_doses)
                    FROM district_daily WHERE {city.days_in_range("day")} GROUP BY day) t
                ORDER BY 1, 2""",
                "time_series",
            ),
            description="Whole city. Lives probably saved = incidents staff judged "
            "life-threatening.",
        ),
        w=12,
        h=8,
    )
    d.add(
        bars(
            "Street needles collected per day",
            sql(
                f"""SELECT {city.local_day("day")} AS time, district AS metric,
                       street_needles_kg AS value
                FROM district_daily WHERE {city.days_in_range("day")} ORDER BY 1, 2""",
                "time_series",
            ),
            unit="masskg",
            decimals=2,
        ),
        w=12,
        h=8,
    )


def _city_hourly_visits_panel(d: Layout) -> None:
    """Visits started per hour."""
    d.add(
        timeseries(
            "Visits started per hour",
            prom(
                "sum by (district) (max by (district, facility) "
                "(increase(dcr_visits_started_total[1h])))",
                "{{district}}",
            ),
            description="Visits as they are reported (live, from Prometheus).",
            decimals=0,
        ),
        w=12,
        h=8,
    )


def city_overview(city: City) -> dashboard.Dashboard:
    d = Layout()
    _city_today_whole_city_row(d)
    _city_per_district_today_row(d, city)
    _city_trends_per_day_row(d, city)
    return dashboard_model(
        "dcr-city-overview",
        "DCR · City overview",
        "Copenhagen's drug consumption rooms: today per district and daily trends.",
        d,
        timezone=city.timezone,
    )


def _district_today_row(d: Layout) -> None:
    """The "Today" row."""
    sel = 'district="$district"'
    d.row("Today")
    for title, metric in (
        ("Visits", "dcr_district_visits_today"),
        ("Unique clients", "dcr_district_unique_clients_today"),
        ("Refusals", "dcr_district_refusals_today"),
        ("Overdoses treated", "dcr_district_overdoses_today"),
        ("Lives probably saved", "dcr_district_life_threatening_incidents_today"),
        ("Naloxone doses", "dcr_district_naloxone_doses_today"),
    ):
        d.add(stat(title, prom(f"max({metric}{{{sel}}})")), w=4, h=4)
    d.add(
        stat("Open drug alerts", prom(f"max(dcr_drug_alerts_open{{{sel}}})")),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Booths in use", prom(f"sum(max by (facility) (dcr_facility_booths_in_use{{{sel}}}))")
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Street needles collected",
            prom(f"max(dcr_district_street_needles_collected_grams_today{{{sel}}}) / 1000"),
            unit="masskg",
            decimals=2,
        ),
        w=4,
        h=4,
    )


def _district_facilities_row(d: Layout, city: City) -> None:
    """The "Facilities" row."""
    sel = 'district="$district"'
    d.row("Facilities")
    d.add(
        table(
            "Facilities today",
            sql(
                f"""SELECT c.name AS "Facility",
                       coalesce(f.visits, 0) AS "Visits", coalesce(f.refusals, 0) AS "Refusals",
                       coalesce(f.incidents, 0) AS "Incidents",
                       coalesce(f.overdoses, 0) AS "Overdoses",
                       s.last_event_time AS "Last event"
                FROM {city.facility_values()}
                LEFT JOIN facility_daily f ON f.facility = c.facility AND f.day = {city.today()}
                LEFT JOIN facility_state s ON s.facility = c.facility
                WHERE c.district = '$district'
                ORDER BY c.name"""
            ),
        ),
        w=12,
        h=7,
    )
    d.add(
        timeseries(
            "Booths in use",
            prom(f"max by (facility) (dcr_facility_booths_in_use{{{sel}}})", "{{facility}}"),
            decimals=0,
        ),
        w=12,
        h=7,
    )


def _district_incidents_and_supplies_row(d: Layout) -> None:
    """The "Incidents and supplies" row."""
    sel = 'district="$district"'
    d.row("Incidents and supplies")
    d.add(
        bargauge(
            "Incidents by kind (time range)",
            prom(
                f"max by (kind) (increase(dcr_incidents_total{{{sel}}}[$__range]))",
                "{{kind}}",
                instant=True,
            ),
        ),
        w=8,
        h=8,
    )
    d.add(
        bargauge(
            "Incidents by outcome (time range)",
            prom(
                f"max by (outcome) (increase(dcr_incident_outcomes_total{{{sel}}}[$__range]))",
                "{{outcome}}",
                instant=True,
            ),
        ),
        w=8,
        h=8,
    )
    d.add(
        bargauge(
            "Supplies dispensed today",
            prom(
                f"max by (item) (dcr_district_supplies_dispensed_today{{{sel}}})",
                "{{item}}",
                instant=True,
            ),
        ),
        w=8,
        h=8,
    )


def _breakdown_per_day(title: str, dimension: str, city: City) -> sdk_timeseries.Panel:
    """Bars per day of the selected district's ``dimension`` breakdown, one series per key."""
    return bars(
        title,
        sql(
            f"""SELECT {city.local_day("day")} AS time, key AS metric, n AS value
                FROM district_daily_breakdown
                WHERE district = '$district' AND dimension = '{dimension}'
                  AND {city.days_in_range("day")}
                ORDER BY 1, 2""",
            "time_series",
        ),
    )


def _district_trends_per_day_row(d: Layout, city: City) -> None:
    """The "Trends per day" row."""
    d.row("Trends per day")
    d.add(
        bars(
            "Visits, unique clients and refusals per day",
            sql(
                f"""SELECT time, metric, value FROM (
                    SELECT {city.local_day("day")} AS time, 'visits' AS metric, visits AS value
                    FROM district_daily WHERE district = '$district' AND {city.days_in_range("day")}
                    UNION ALL
                    SELECT {city.local_day("day")}, 'unique clients', unique_clients
                    FROM district_daily WHERE district = '$district' AND {city.days_in_range("day")}
                    UNION ALL
                    SELECT {city.local_day("day")}, 'refusals', refusals
                    FROM district_daily WHERE district = '$district'
                      AND {city.days_in_range("day")}) t
                ORDER BY 1, 2""",
                "time_series",
            ),
        ),
        w=12,
        h=8,
    )
    d.add(_breakdown_per_day("Incidents per day by kind", "incident_kind", city), w=12, h=8)
    d.add(_breakdown_per_day("Supplies dispensed per day by item", "supply_item", city), w=12, h=8)
    d.add(
        timeseries(
            "Visit length per day",
            sql(
                f"""SELECT time, metric, value FROM (
                    SELECT {city.local_day("day")} AS time, 'median' AS metric,
                           visit_minutes_median AS value
                    FROM district_daily WHERE district = '$district' AND {city.days_in_range("day")}
                      AND visit_minutes_median IS NOT NULL
                    UNION ALL
                    SELECT {city.local_day("day")}, 'mean', visit_minutes_mean
                    FROM district_daily WHERE district = '$district' AND {city.days_in_range("day")}
                      AND visit_minutes_mean IS NOT NULL) t
                ORDER BY 1, 2""",
                "time_series",
            ),
            unit="m",
            description="Minutes from check-in to check-out of completed visits.",
        ),
        w=12,
        h=8,
    )


def _district_drug_alerts_row(d: Layout) -> None:
    """The "Drug alerts" row."""
    sel = 'district="$district"'
    d.row("Drug alerts")
    d.add(
        bargauge(
            "Drug alerts by state",
            prom(f"max by (state) (dcr_drug_alerts_by_state{{{sel}}})", "{{state}}", instant=True),
            description="Open (nobody took charge yet), acknowledged by ops, resolved after "
            "the quiet period without qualifying reports.",
        ),
        w=8,
        h=7,
    )
    d.add(
        stat(
            "Mean time to acknowledge",
            prom(
                f"max(dcr_drug_alert_seconds_to_acknowledge_sum{{{sel}}})"
                f" / max(dcr_drug_alert_seconds_to_acknowledge_count{{{sel}}})"
            ),
            unit="s",
            description="From a drug alert being raised to an ops user acknowledging it "
            "(acknowledged alerts of the district, all time).",
        ),
        w=4,
        h=7,
    )
    d.add(
        table(
            "Drug alerts",
            sql(
                """SELECT raised_at AS "Raised", reason AS "Reason", substance AS "Substance",
                       facility_id AS "Facility", overdoses_in_window AS "Overdoses",
                       state AS "State", late AS "Late reports",
                       acknowledged_at AS "Acknowledged",
                       seconds_to_acknowledge AS "Seconds to acknowledge",
                       resolved_at AS "Resolved"
                FROM alerts WHERE district = '$district' AND $__timeFilter(raised_at)
                ORDER BY raised_at DESC LIMIT 50"""
            ),
        ),
        w=12,
        h=7,
    )


def district_drilldown(city: City) -> dashboard.Dashboard:
    d = Layout()
    _district_today_row(d)
    _district_facilities_row(d, city)
    _district_incidents_and_supplies_row(d)
    _district_trends_per_day_row(d, city)
    _district_drug_alerts_row(d)
    return dashboard_model(
        "dcr-district",
        "DCR · District drill-down",
        "One district: today, its facilities, incidents, supplies, trends and drug alerts.",
        d,
        timezone=city.timezone,
        variables=[custom_variable("district", "District", [(i, n) for i, n in city.districts])],
    )


def _facility_now_row(d: Layout) -> None:
    """The "Now" row."""
    sel = 'facility="$facility"'
    d.row("Now")
    d.add(
        stat(
            "Open now",
            prom(f"max(dcr_facility_open{{{sel}}})"),
            mappings={"0": ("Closed", "grey"), "1": ("Open", "green")},
        ),
        w=4,
        h=4,
    )
    d.add(stat("Booths in use", prom(f"max(dcr_facility_booths_in_use{{{sel}}})")), w=4, h=4)
    d.add(stat("Booths", prom(f"max(dcr_facility_booths{{{sel}}})")), w=4, h=4)
    d.add(stat("Visits today", prom(f"max(dcr_facility_visits_today{{{sel}}})")), w=4, h=4)
    d.add(stat("Refusals today", prom(f"max(dcr_facility_refusals_today{{{sel}}})")), w=4, h=4)
    d.add(
        stat(
            "Since last event",
            prom(f"time() - max(dcr_facility_last_event_timestamp_seconds{{{sel}}})"),
            unit="s",
            description="Time since the latest event the facility reported (event time).",
            thresholds=[("green", None), ("orange", 1800)],
        ),
        w=4,
        h=4,
    )


def _facility_occupancy_and_refusals_row(d: Layout, city: City) -> None:
    """The "Occupancy and refusals" row."""
    sel = 'facility="$facility"'
    d.row("Occupancy and refusals")
    d.add(
        timeseries(
            "Booths in use",
            prom(f"max(dcr_facility_booths_in_use{{{sel}}})", "in use"),
            prom(f"max(dcr_facility_booths{{{sel}}})", "booths"),
            decimals=0,
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "Visits and refusals per hour",
            prom(f"max(increase(dcr_visits_started_total{{{sel}}}[1h]))", "visits started"),
            prom(f"max(increase(dcr_visits_refused_total{{{sel}}}[1h]))", "refused"),
            decimals=0,
        ),
        w=12,
        h=8,
    )
    d.add(
        bars(
            "Check-ins per hour (time range)",
            sql(
                """SELECT hour AS time, 'check-ins' AS metric, check_ins AS value
                FROM facility_checkins_hourly
                WHERE facility = '$facility' AND $__timeFilter(hour)
                ORDER BY 1""",
                "time_series",
            ),
        ),
        w=12,
        h=8,
    )
    d.add(
        bars(
            "Visits and refusals per day",
            sql(
                f"""SELECT time, metric, value FROM (
                    SELECT {city.local_day("day")} AS time, 'visits' AS metric, visits AS value
                    FROM facility_daily WHERE facility = '$facility' AND {city.days_in_range("day")}
                    UNION ALL
                    SELECT {city.local_day("day")}, 'refusals', refusals
                    FROM facility_daily WHERE facility = '$facility'
                      AND {city.days_in_range("day")}) t
                ORDER BY 1, 2""",
                "time_series",
            ),
        ),
        w=12,
        h=8,
    )


def _facility_stock_row(d: Layout) -> None:
    """The "Stock" row."""
    sel = 'facility="$facility"'
    d.row("Stock")
    d.add(
        table(
            "Stock on hand",
            sql(
                """WITH items AS (SELECT DISTINCT item FROM stock_movements
                                  WHERE facility = '$facility'
                                  UNION SELECT item FROM stock_counts
                                  WHERE facility = '$facility'),
                     s AS (
                       SELECT i.item, c.counted_at,
                              coalesce(c.quantity, 0)
                                + coalesce((SELECT sum(m.delta) FROM stock_movements m
                                            WHERE m.facility = '$facility' AND m.item = i.item
                                              AND (c.counted_at IS NULL
                                                   OR m.at > c.counted_at)), 0) AS on_hand,
                              coalesce((SELECT -sum(m.delta) FROM stock_movements m
                                        WHERE m.facility = '$facility' AND m.item = i.item
                                          AND m.delta < 0
                                          AND m.at > now() - interval '7 days'
                                          AND m.at <= now()), 0) AS used_7d
                       FROM items i
                       LEFT JOIN stock_counts c ON c.facility = '$facility' AND c.item = i.item)
                SELECT item AS "Item", on_hand AS "On hand", used_7d AS "Dispensed (7 days)",
                       CASE WHEN used_7d > 0
                            THEN round(greatest(on_hand, 0) * 7.0 / used_7d, 1) END
                         AS "Days of cover",
                       counted_at AS "Last counted"
                FROM s ORDER BY item"""
            ),
            description="On hand = latest count + deliveries - dispensing since. Days of cover "
            "at the last 7 days' mean dispensing rate.",
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "Days of cover by item",
            prom(f"max by (item) (dcr_stock_cover_seconds{{{sel}}})", "{{item}}"),
            unit="s",
            thresholds=[("red", None), ("green", 2 * 86400)],
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "On hand by item",
            prom(f"max by (item) (dcr_stock_on_hand{{{sel}}})", "{{item}}"),
            decimals=0,
        ),
        w=12,
        h=8,
    )


def _facility_all_facilities_row(d: Layout, city: City) -> None:
    """The "All facilities" row."""
    d.row("All facilities")
    d.add(
        table(
            "Facilities: last event and today",
            sql(
                f"""SELECT c.name AS "Facility", c.district AS "District",
                       s.last_event_time AS "Last event",
                       coalesce(f.visits, 0) AS "Visits today",
                       coalesce(f.refusals, 0) AS "Refusals today"
                FROM {city.facility_values()}
                LEFT JOIN facility_state s ON s.facility = c.facility
                LEFT JOIN facility_daily f ON f.facility = c.facility AND f.day = {city.today()}
                ORDER BY c.name"""
            ),
        ),
        w=12,
        h=8,
    )
    d.add(
        bargauge(
            "Since last event",
            prom(
                "time() - max by (facility) (dcr_facility_last_event_timestamp_seconds)",
                "{{facility}}",
                instant=True,
            ),
            unit="s",
        ),
        w=12,
        h=8,
    )


def facility_operations(city: City) -> dashboard.Dashboard:
    d = Layout()
    _facility_now_row(d)
    _facility_occupancy_and_refusals_row(d, city)
    _facility_stock_row(d)
    _facility_all_facilities_row(d, city)
    return dashboard_model(
        "dcr-facility",
        "DCR · Facility operations",
        "One room: opening, booths, refusals, stock and when it last reported.",
        d,
        timezone=city.timezone,
        time_from="now-24h",
        variables=[
            custom_variable("facility", "Facility", [(i, n) for i, n, _ in city.facilities])
        ],
    )


def _platform_services_row(d: Layout) -> None:
    """The "Services" row."""
    d.row("Services")
    d.add(
        stat(
            "Up",
            prom('up{job=~"intake|supply|incident|projection|public"}', "{{job}}"),
            mappings={"0": ("DOWN", "red"), "1": ("up", "green")},
        ),
        w=8,
        h=4,
    )
    d.add(
        stat(
            "Read models behind",
            prom("time() - max(dcr_read_model_last_record_timestamp_seconds)"),
            unit="s",
            description="Age of the newest record applied to the read models (grows while idle; "
            "a problem only if records wait: see consumer lag).",
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Consumer lag",
            prom("sum(dcr_projection_consumer_lag_records)"),
            description="Records in the event topics not yet applied, all instances.",
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Dead letters (time range)",
            prom("sum(increase(dcr_deadlettered_records_total[$__range]))"),
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Domain metrics age",
            prom("time() - max(dcr_domain_metrics_last_refresh_timestamp_seconds)"),
            unit="s",
            description="Since the projection last read the read models for its domain metrics.",
        ),
        w=4,
        h=4,
    )


def _platform_http_red_row(d: Layout) -> None:
    """The "HTTP (RED)" row."""
    d.row("HTTP (RED)")
    d.add(
        timeseries(
            "Requests per second",
            prom(
                f"sum by (service, status) (rate(dcr_http_requests_total{{{API}}}"
                "[$__rate_interval]))",
                "{{service}} {{status}}",
            ),
            unit="reqps",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "5xx ratio",
            prom(
                f'(sum by (service) (rate(dcr_http_requests_total{{status=~"5..", {API}}}'
                "[$__rate_interval]))"
                f" or sum by (service) (rate(dcr_http_requests_total{{{API}}}"
                "[$__rate_interval])) * 0)"
                f" / sum by (service) (rate(dcr_http_requests_total{{{API}}}[$__rate_interval]))",
                "{{service}}",
            ),
            unit="percentunit",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Latency p95",
            prom(
                "histogram_quantile(0.95, sum by (service, le) "
                f"(rate(dcr_http_request_duration_seconds_bucket{{{API}}}[$__rate_interval])))",
                "{{service}}",
            ),
            unit="s",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Events taken in by outcome",
            prom(
                "sum by (service, outcome) (rate(dcr_ingest_events_total[$__rate_interval]))",
                "{{service}} {{outcome}}",
            ),
            unit="ops",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Refused authentication",
            prom(
                "sum by (service, reason) (rate(dcr_auth_failures_total[$__rate_interval]))",
                "{{service}} {{reason}}",
            ),
            unit="reqps",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Drug alerts published (time range)",
            prom(
                "sum by (district, reason) (increase(dcr_drug_alerts_total[$__range]))",
                "{{district}} {{reason}}",
            ),
            decimals=0,
        ),
        w=8,
        h=8,
    )


def _platform_kafka_row(d: Layout) -> None:
    """The "Kafka" row."""
    d.row("Kafka")
    d.add(
        timeseries(
            "Publish latency p95 (acks=all)",
            prom(
                "histogram_quantile(0.95, sum by (service, topic, le) "
                "(rate(dcr_kafka_publish_duration_seconds_bucket[$__rate_interval])))",
                "{{service}} {{topic}}",
            ),
            unit="s",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Messages published (FastStream)",
            prom(
                "sum by (app_name, status) "
                "(rate(dcr_faststream_published_messages_total[$__rate_interval]))",
                "{{app_name}} {{status}}",
            ),
            unit="ops",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Publish errors",
            prom(
                "sum by (service, topic) (rate(dcr_kafka_publish_errors_total[$__rate_interval]))"
                " or on () vector(0)",
                "{{service}} {{topic}}",
            ),
            unit="ops",
            description="Publishes Kafka did not acknowledge (the client got 503). 0 when none.",
        ),
        w=8,
        h=8,
    )


def _platform_projection_row(d: Layout) -> None:
    """The "Projection" row: progress, then failures, then who owns what."""
    d.row("Projection")
    _projection_progress_panels(d)
    _projection_failure_panels(d)
    _projection_ownership_panels(d)


def _projection_progress_panels(d: Layout) -> None:
    """Lag, freshness, events applied and batch sizes."""
    d.add(
        timeseries(
            "Consumer lag by topic",
            prom("sum by (topic) (dcr_projection_consumer_lag_records)", "{{topic}}"),
            decimals=0,
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Freshness",
            prom(
                "time() - max(dcr_read_model_last_record_timestamp_seconds)",
                "newest applied record (read models)",
            ),
            prom(
                "max by (instance) (dcr_projection_last_applied_event_age_seconds)",
                "last applied, {{instance}}",
            ),
            unit="s",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Events applied by type",
            prom(
                "sum by (type) (rate(dcr_projection_events_applied_total[$__rate_interval]))",
                "{{type}}",
            ),
            unit="ops",
            stacked=True,
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Batches",
            prom(
                "histogram_quantile(0.5, sum by (le) "
                "(rate(dcr_projection_batch_size_records_bucket[$__rate_interval])))",
                "records per batch (p50)",
            ),
            prom(
                "histogram_quantile(0.95, sum by (le) "
                "(rate(dcr_projection_batch_apply_duration_seconds_bucket[$__rate_interval])))"
                " * 1000",
                "apply ms (p95)",
            ),
        ),
        w=8,
        h=8,
    )


def _projection_failure_panels(d: Layout) -> None:
    """Duplicates, failed batches, fenced partitions, claim and visit fallbacks, dead letters."""
    d.add(
        timeseries(
            "Duplicates, failed batches, fenced partitions",
            prom(
                "sum by (topic) (rate(dcr_projection_duplicate_events_total[$__rate_interval]))",
                "duplicates {{topic}}",
            ),
            prom(
                "sum(rate(dcr_projection_batch_failures_total[$__rate_interval]))",
                "failed batches",
            ),
            prom(
                "sum(rate(dcr_projection_fenced_partitions_total[$__rate_interval]))",
                "fenced partitions",
            ),
            prom(
                "sum(rate(dcr_projection_claim_fallbacks_total[$__rate_interval]))",
                "claims retried with ON CONFLICT",
            ),
            prom(
                "sum(rate(dcr_projection_visit_fallbacks_total[$__rate_interval]))",
                "visit starts retried with ON CONFLICT",
            ),
            unit="ops",
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Dead letters per hour",
            prom(
                "sum by (service, topic) (increase(dcr_deadlettered_records_total[1h]))",
                "{{service}} {{topic}}",
            ),
            decimals=0,
        ),
        w=8,
        h=8,
    )


def _projection_ownership_panels(d: Layout) -> None:
    """Domain metrics refresh, partitions per instance and the stored offsets."""
    d.add(
        timeseries(
            "Domain metrics refresh",
            prom(
                "time() - max by (instance) (dcr_domain_metrics_last_refresh_timestamp_seconds)",
                "age {{instance}}",
            ),
            prom(
                "sum by (instance) (rate(dcr_domain_metrics_refresh_errors_total"
                "[$__rate_interval]))",
                "errors/s {{instance}}",
            ),
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "Assigned partitions by instance",
            prom("sum by (instance) (dcr_projection_assigned_partitions)", "{{instance}}"),
            decimals=0,
            description="Event-topic partitions each projection instance owns; together they "
            "should cover every partition of the event topics.",
        ),
        w=8,
        h=8,
    )
    d.add(
        table(
            "Consumer positions (stored offsets)",
            sql(
                """SELECT consumer_group AS "Group", topic AS "Topic",
                       partition AS "Partition", next_offset AS "Next offset",
                       last_record_time AS "Last record"
                FROM projection_offsets ORDER BY consumer_group, topic, partition"""
            ),
            description="Where each partition's projection stands, from the read models.",
        ),
        w=16,
        h=8,
    )


def platform_health(city: City) -> dashboard.Dashboard:
    d = Layout()
    _platform_services_row(d)
    _platform_http_red_row(d)
    _platform_kafka_row(d)
    _platform_projection_row(d)
    return dashboard_model(
        "dcr-platform",
        "DCR · Platform health",
        "Services (RED), Kafka publishing, the projection's lag, freshness and dead letters.",
        d,
        timezone=city.timezone,
        time_from="now-6h",
    )


# --- entry point ------------------------------------------------------------------------------

DASHBOARDS = {
    "city-overview.json": city_overview,
    "district.json": district_drilldown,
    "facility.json": facility_operations,
    "platform-health.json": platform_health,
}


def build(city_file: Path = CITY_FILE) -> dict[str, Json]:
    """File name -> dashboard JSON model."""
    city = City(city_file)
    return {name: _as_json(make(city)) for name, make in DASHBOARDS.items()}


def _as_json(model: dashboard.Dashboard) -> Json:
    """The SDK model as plain JSON (the SDK's encoder calls each object's ``to_json``)."""
    encoded: Json = json.loads(json.dumps(model, cls=JSONEncoder))
    return encoded


def render(model: Json) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, model in build().items():
        path = OUT / name
        text = render(model)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run {Path(__file__).name})", file=sys.stderr)
        return 1
    print(f"{'checked' if args.check else 'written'}: {', '.join(DASHBOARDS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
