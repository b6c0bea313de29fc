"""Read API over the per-room and period read models (its own router, JSON):

* ``GET /v1/rooms/{facility}/daily``: a room's figures per day;
* ``GET /v1/periods``: totals of a scope (city, district, room) over a week, month, quarter,
  year, since opening or a custom range; distinct people are counted over the whole period;
* ``GET /v1/street-collections``: street needle collections per district, area and day.

Access: the composition root passes the dependency that authenticates a reader
(``reader``); each route narrows it by role (:mod:`.access`): an analyst reads the city and
districts over closed days (its default period is the last closed one), a facility its own room.
"""

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from services.projection import access
from services.projection import responses as r
from services.projection.api import FromDate, ReadContext, ToDate, _query_error
from services.projection.api import _range as day_range
from services.projection.figures import days_between
from services.projection.period_figures import complete, scope_tables
from services.projection.periods import PeriodError, PeriodKind, last_closed_anchor, parse_scope
from services.projection.report.build import ReportRequest, parse_request
from shared.auth import Principal

Scope = Annotated[str, Query(description="city, district:<id> or room:<id>")]
PeriodQ = Annotated[str, Query(description="week, month, quarter, year, since-opening, custom")]
Anchor = Annotated[date | None, Query(description="A day in the period (default today)")]


def _number(v: Decimal) -> int | float:
    return int(v) if v == v.to_integral_value() else float(v)


def report_request(
    ctx: ReadContext,
    principal: Principal,
    service: str,
    variant: str,
    scope: str,
    period: str,
    anchor: date | None,
    start: date | None,
    end: date | None,
) -> ReportRequest:
    """The request of a period or report query, checked against what ``principal`` may read
    (403: :func:`.access.scope_allowed`, :func:`.access.closed_days_only`); a bad input is a
    422 naming the field. An analyst who gives no anchor gets the last closed period."""
    today = ctx.today()
    try:
        access.scope_allowed(principal, parse_scope(scope, ctx.city), service)
    except PeriodError as exc:
        raise _query_error(exc.field, str(exc)) from None
    if anchor is None and principal.kind is access.ANALYST and period in set(PeriodKind):
        anchor = last_closed_anchor(PeriodKind(period), today)
    try:
        req = parse_request(
            ctx.city,
            today,
            scope=scope,
            period=period,
            variant=variant,
            anchor=anchor,
            start=start,
            end=end,
            max_days=ctx.settings.max_range_days,
        )
    except PeriodError as exc:
        raise _query_error(exc.field, str(exc)) from None
    access.closed_days_only(principal, req.period.end, today, service)
    return req


def build_period_router(
    get_ctx: Callable[[Request], ReadContext], reader: Callable[..., Principal], service: str
) -> APIRouter:
    """``reader``: the dependency that authenticates a token of a kind allowed here; ``service``
    names the service in refusals (counted)."""
    router = APIRouter()

    async def totals(ctx: ReadContext, req: ReportRequest) -> r.PeriodTotals:
        p = req.period
        rooms = await ctx.reads.room_cells([f.id for f in ctx.city.facilities], p.start, p.end)
        table = scope_tables(ctx.city, rooms)[req.scope.key]
        return r.PeriodTotals(
            scope=req.scope.key,
            period=p.kind.value,
            label=p.label,
            from_=p.start,
            to=p.end,
            days=p.days,
            figures={k: _number(v) for k, v in table.items()},
            **r.Fresh.of(await ctx.freshness()),
        )

    @router.get("/periods", summary="A scope's totals over a period (distinct people exact)")
    async def periods(
        request: Request,
        principal: Annotated[Principal, Depends(reader)],
        scope: Scope = "city",
        period: PeriodQ = "month",
        anchor: Anchor = None,
        start: FromDate = None,
        end: ToDate = None,
    ) -> r.PeriodTotals:
        ctx = get_ctx(request)
        req = report_request(ctx, principal, service, "internal", scope, period, anchor, start, end)
        return await totals(ctx, req)

    @router.get("/rooms/{facility}/daily", summary="A room's figures per day")
    async def room_daily(
        request: Request,
        facility: str,
        principal: Annotated[Principal, Depends(reader)],
        start: FromDate = None,
        end: ToDate = None,
    ) -> r.RoomDays:
        ctx = get_ctx(request)
        access.room_figures(principal, facility, service)
        if facility not in ctx.city.facility_by_id:
            raise HTTPException(404, "unknown facility")
        first, last = day_range(ctx, start, end)
        found = await ctx.reads.room_days(facility, first, last)
        days = [
            r.RoomDay.model_validate(
                {"day": d, **{k: _number(v) for k, v in complete(found.get(d, {})).items()}}
            )
            for d in days_between(first, last)
        ]
        return r.RoomDays(
            facility=facility,
            district=ctx.city.district_of(facility),
            from_=first,
            to=last,
            days=days,
            **r.Fresh.of(await ctx.freshness()),
        )

    @router.get("/street-collections", summary="Street needle collections by district and area")
    async def street_collections(
        request: Request,
        principal: Annotated[Principal, Depends(reader)],
        district: str | None = None,
        start: FromDate = None,
        end: ToDate = None,
    ) -> r.StreetCollections:
        ctx = get_ctx(request)
        access.not_facility(principal, service)
        if district is not None and district not in ctx.city.district_by_id:
            raise HTTPException(404, "unknown district")
        first, last = day_range(ctx, start, end)
        districts = [district] if district else [d.id for d in ctx.city.districts]
        rows = await ctx.reads.street_area_days(districts, first, last)
        return r.StreetCollections(
            from_=first,
            to=last,
            collections=[
                r.StreetCollection(
                    day=row.day,
                    district=row.district,
                    area=row.area,
                    reports=row.reports,
                    needles=row.needles,
                    kg=float(row.kg),
                )
                for row in rows
            ],
            **r.Fresh.of(await ctx.freshness()),
        )

    return router
