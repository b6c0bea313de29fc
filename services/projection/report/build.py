"""Building a report: parse the request, gather the read models, render (shared by the
``dcr report`` command and the ``GET /v1/reports`` endpoint).

:func:`read_facts` reads everything in one REPEATABLE READ transaction, so the figures and the
event-log position it states belong to the same snapshot of the read models; :func:`assemble`
turns those facts into the report's input without I/O (the read API gets the facts through its
read-model port, :mod:`services.projection.read_port`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.projection import period_queries as q
from services.projection.period_figures import scope_hidden, scope_tables
from services.projection.periods import (
    CALENDAR_PERIODS,
    Period,
    PeriodError,
    PeriodKind,
    Scope,
    opening_day,
    parse_scope,
    resolve_period,
    scope_districts,
    scope_facilities,
    scope_name,
)
from services.projection.report.charts import render_png
from services.projection.report.document import ReportInput, Variant, build_document
from services.projection.report.html import render_html
from services.projection.report.pdf import render_pdf
from services.projection.store import Conn
from shared.city import City


class Format(StrEnum):
    HTML = "html"
    PDF = "pdf"


#: Reports cover days in these years (charts and calendars need some room at both ends).
FIRST_YEAR, LAST_YEAR = 2000, 2999
MEDIA_TYPES = {Format.HTML: "text/html; charset=utf-8", Format.PDF: "application/pdf"}


@dataclass(frozen=True, slots=True)
class ReportRequest:
    scope: Scope
    period: Period
    variant: Variant


def parse_request(
    city: City,
    today: date,
    *,
    scope: str,
    period: str,
    variant: str,
    anchor: date | None = None,
    start: date | None = None,
    end: date | None = None,
    max_days: int = 3660,
) -> ReportRequest:
    """A request from user input; :class:`PeriodError` names the offending field."""
    the_scope = parse_scope(scope, city)
    try:
        kind = PeriodKind(period)
    except ValueError:
        raise PeriodError("period", f"one of {', '.join(k.value for k in PeriodKind)}") from None
    try:
        the_variant = Variant(variant)
    except ValueError:
        raise PeriodError("variant", "public or internal") from None
    if kind is not PeriodKind.CUSTOM and (start is not None or end is not None):
        raise PeriodError("from", "'from'/'to' only go with period=custom (use 'anchor')")
    the_period = resolve_period(
        kind, anchor=anchor or today, start=start, end=end, opened=opening_day(the_scope, city)
    )
    if not (the_period.start.year >= FIRST_YEAR and the_period.end.year <= LAST_YEAR):
        field = "from" if kind is PeriodKind.CUSTOM else "anchor"
        raise PeriodError(field, f"outside the years {FIRST_YEAR} to {LAST_YEAR}")
    if the_variant is Variant.PUBLIC and kind not in CALENDAR_PERIODS:
        raise PeriodError(
            "period", "the public variant covers calendar periods only (week, month, quarter, year)"
        )
    if the_variant is Variant.PUBLIC and the_period.end >= today:
        raise PeriodError(
            "period", "the public variant covers closed periods only (ended before today)"
        )
    if the_period.days > max_days:
        raise PeriodError("period", f"longer than {max_days} days")
    return ReportRequest(the_scope, the_period, the_variant)


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """What a report reads from the read models, all from one snapshot: every room's amounts
    over the period (all rooms: the public release is audited across them), the scope's daily
    series, street collections (from :func:`street_from`) and areas, alerts raised and the
    event-log position."""

    rooms: dict[str, q.RoomCells]
    series: q.DaySeries
    street: dict[date, q.StreetDay]
    areas: list[q.StreetArea]
    alerts: list[dict[str, Any]]
    position: q.LogPosition


async def read_facts(conn: Conn, city: City, req: ReportRequest, *, group: str) -> ReportFacts:
    """The facts of ``req`` in one REPEATABLE READ, read-only transaction."""
    start, end = req.period.start, req.period.end
    facilities = scope_facilities(req.scope, city)
    districts = scope_districts(req.scope, city)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return ReportFacts(
            rooms=await q.room_cells(conn, [f.id for f in city.facilities], start, end),
            series=await q.day_series(conn, facilities, start, end),
            street=await q.street_days(conn, districts, street_from(req, city), end),
            areas=await q.street_areas(conn, districts, start, end),
            alerts=await q.alerts_raised(conn, districts, start, end, city.zone),
            position=await q.log_position(conn, group),
        )


def assemble(
    facts: ReportFacts, city: City, req: ReportRequest, *, threshold: int, build_time: datetime
) -> ReportInput:
    """The report's input from its facts (pure): the scope's table and, for the public
    variant, the cells its release hides."""
    districts = scope_districts(req.scope, city)
    names = {d.id: d.name for d in city.districts}
    areas = [dataclasses.replace(a, district=names[a.district]) for a in facts.areas]
    alerts = [{**a, "district": names.get(a["district"], a["district"])} for a in facts.alerts]
    tables = scope_tables(city, facts.rooms)
    key = req.scope.key
    hidden: frozenset[str] = frozenset()
    if req.variant is Variant.PUBLIC:
        hidden = scope_hidden(city, tables, key, threshold)
    return ReportInput(
        scope=req.scope,
        scope_name=scope_name(req.scope, city),
        period=req.period,
        variant=req.variant,
        threshold=threshold,
        table=tables[key],
        hidden=hidden,
        series=facts.series,
        street=facts.street,
        street_district_names=tuple(city.district_by_id[d].name for d in districts),
        areas=tuple(areas),
        alerts=tuple(alerts),
        opened=opening_day(req.scope, city),
        position=facts.position,
        build_time=build_time,
        city_timezone=city.timezone,
    )


async def gather(
    conn: Conn,
    city: City,
    req: ReportRequest,
    *,
    group: str,
    threshold: int,
    build_time: datetime,
) -> ReportInput:
    """:func:`read_facts` then :func:`assemble` (the ``dcr report`` command)."""
    facts = await read_facts(conn, city, req, group=group)
    return assemble(facts, city, req, threshold=threshold, build_time=build_time)


def street_from(req: ReportRequest, city: City) -> date:
    """First day of street collections to read: the period's, except for a since-opening
    period, which has no day before the opening: then as many days before the opening as the
    period has (the before/after baseline, at most a year)."""
    opened = opening_day(req.scope, city)
    p = req.period
    if p.kind is PeriodKind.SINCE_OPENING and opened is not None:
        return opened - timedelta(days=min(p.days, 366))
    return p.start


def render(inp: ReportInput, fmt: Format) -> bytes:
    """The report's bytes (CPU-bound: call it off the event loop in a server)."""
    doc = build_document(inp)
    if fmt is Format.HTML:
        return render_html(doc, render_png).encode("utf-8")
    return render_pdf(doc, render_png)


def filename(req: ReportRequest, fmt: Format) -> str:
    scope = req.scope.key.replace(":", "-")
    p = req.period
    return f"dcr-report-{scope}-{p.start.isoformat()}-{p.end.isoformat()}-{req.variant}.{fmt}"
