"""The internal read API (JSON, port 8004): city summary, district days, facility live and
stock, alerts. Every route needs a bearer token of a kind :mod:`.access` allows for it.

Every answer is a typed model of :mod:`.responses` (OpenAPI documents each field) and carries
the freshness of the read models (``data_complete_until``, ``lag_events``,
``last_applied_record_time``; see :class:`~.runner.Freshness`). Dates are calendar days in the
city's time zone; ``from``/``to`` default to today there, ``from > to`` or a range longer than
``max_range_days`` is a 422. The figures come through the read-model port
(:class:`~.read_port.ReadModels`), so the routes are unit-tested with an in-memory fake.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import AwareDatetime

from services.projection import access
from services.projection import responses as r
from services.projection.figures import Day, days_between, empty_day, sum_days, to_json
from services.projection.read_port import ReadModels
from services.projection.runner import Freshness
from services.projection.settings import ProjectionSettings
from shared.auth import Principal, TokenRegistry
from shared.city import City
from shared.http_auth import require_kinds


@dataclass
class ReadContext:
    """What the read routes need. ``reads`` answers every read route (:mod:`.api`,
    :mod:`.period_api`, :mod:`.report_api`); ``pool`` is for the health check only."""

    pool: asyncpg.Pool
    reads: ReadModels
    city: City
    settings: ProjectionSettings
    freshness: Callable[[], Awaitable[Freshness]]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def today(self) -> date:
        return self.clock().astimezone(self.city.zone).date()


FromDate = Annotated[date | None, Query(alias="from", description="First day (YYYY-MM-DD)")]
ToDate = Annotated[date | None, Query(alias="to", description="Last day (YYYY-MM-DD)")]


def _query_error(name: str, msg: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["query", name], "msg": msg, "type": "value_error"}])


def _range(ctx: ReadContext, start: date | None, end: date | None) -> tuple[date, date]:
    end = end or ctx.today()
    start = start or end
    if start > end:
        raise _query_error("from", "must not be after 'to'")
    if (end - start).days + 1 > ctx.settings.max_range_days:
        raise _query_error("from", f"range longer than {ctx.settings.max_range_days} days")
    return start, end


async def _fresh(ctx: ReadContext) -> dict[str, Any]:
    return r.Fresh.of(await ctx.freshness())


async def _city_days(
    ctx: ReadContext,
    start: date,
    end: date,
) -> tuple[dict[date, dict[str, Day]], dict[date, Day]]:
    """Every district's figures and the city's sum, for each day of the range."""
    districts = [d.id for d in ctx.city.districts]
    found = await ctx.reads.district_days(districts, start, end)
    city_wide = await ctx.reads.city_days(start, end)
    per_day: dict[date, dict[str, Day]] = {}
    city: dict[date, Day] = {}
    for day in days_between(start, end):
        per_day[day] = {d: found.get((d, day)) or empty_day() for d in districts}
        clients, median = city_wide.get(day, (0, None))
        city[day] = sum_days(per_day[day].values(), median)
        city[day]["unique_clients"] = clients  # distinct city-wide, not the districts' sum
    return per_day, city


def build_router(
    get_ctx: Callable[[Request], ReadContext],
    get_tokens: Callable[[Request], TokenRegistry],
    service: str,
) -> APIRouter:
    router = APIRouter(
        responses={
            401: {"description": "missing or invalid bearer token"},
            403: {"description": "this token's role may not read this"},
        }
    )

    def role(kinds: frozenset[Any]) -> Any:
        return Depends(require_kinds(service, get_tokens, kinds))

    directory = [role(access.DIRECTORY)]
    figures_reader = require_kinds(service, get_tokens, access.FIGURES)
    room_reader = require_kinds(service, get_tokens, access.ROOM)
    alerts_reader = require_kinds(service, get_tokens, access.ALERTS)

    def figures_range(
        ctx: ReadContext, principal: Principal, start: date | None, end: date | None
    ) -> tuple[date, date]:
        """The day range asked for; an analyst's is closed days only (default: yesterday)."""
        if principal.kind is not access.ANALYST:
            return _range(ctx, start, end)
        yesterday = ctx.today() - timedelta(days=1)
        access.closed_days_only(principal, end or yesterday, ctx.today(), service)
        return _range(ctx, start, end or yesterday)

    def district_or_404(ctx: ReadContext, district: str) -> str:
        if district not in ctx.city.district_by_id:
            raise HTTPException(404, "unknown district")
        return district

    @router.get(
        "/districts", summary="The city's districts and their facilities", dependencies=directory
    )
    async def districts(request: Request) -> r.Directory:
        ctx = get_ctx(request)
        return r.Directory(
            districts=[
                r.District(
                    id=d.id,
                    name=d.name,
                    facilities=[
                        r.Facility(id=f.id, name=f.name, status=f.status.value, booths=f.booths)
                        for f in ctx.city.facilities
                        if f.district == d.id
                    ],
                )
                for d in ctx.city.districts
            ]
        )

    @router.get("/districts/{district}/daily", summary="A district's figures per day")
    async def district_daily(
        request: Request,
        district: str,
        principal: Annotated[Principal, Depends(figures_reader)],
        start: FromDate = None,
        end: ToDate = None,
    ) -> r.DistrictDays:
        ctx = get_ctx(request)
        district_or_404(ctx, district)
        first, last = figures_range(ctx, principal, start, end)
        found = await ctx.reads.district_days([district], first, last)
        days = [
            _day(day, found.get((district, day)) or empty_day())
            for day in days_between(first, last)
        ]
        return r.DistrictDays(
            district=district, from_=first, to=last, days=days, **await _fresh(ctx)
        )

    @router.get("/city/summary", summary="The districts' figures summed per day")
    async def city_summary(
        request: Request,
        principal: Annotated[Principal, Depends(figures_reader)],
        start: FromDate = None,
        end: ToDate = None,
    ) -> r.CityDays:
        ctx = get_ctx(request)
        first, last = figures_range(ctx, principal, start, end)
        _, city = await _city_days(ctx, first, last)
        days = [_day(day, figures) for day, figures in city.items()]
        return r.CityDays(from_=first, to=last, days=days, **await _fresh(ctx))

    @router.get("/facilities/{facility}/live", summary="A facility right now")
    async def facility_live(
        request: Request,
        facility: str,
        principal: Annotated[Principal, Depends(room_reader)],
    ) -> r.FacilityLive:
        access.own_room(principal, facility, service)
        ctx = get_ctx(request)
        f = ctx.city.facility_by_id.get(facility)
        if f is None:
            raise HTTPException(404, "unknown facility")
        now = ctx.clock()
        live = await ctx.reads.facility_live(
            facility, ctx.today(), now, ctx.settings.stale_visit_hours
        )
        return r.FacilityLive(
            facility=f.id,
            name=f.name,
            district=f.district,
            status=f.status.value,
            booths_total=f.booths,
            booths_in_use=live.in_use,
            booths_free=max(f.booths - live.in_use, 0),
            open_now=f.is_open(now.astimezone(ctx.city.zone)),
            visits_today=live.visits_today,
            refusals_today=live.refusals_today,
            last_event_time=live.last_event_time,
            **await _fresh(ctx),
        )

    @router.get("/facilities/{facility}/stock", summary="A facility's supplies on hand")
    async def facility_stock(
        request: Request,
        facility: str,
        principal: Annotated[Principal, Depends(room_reader)],
    ) -> r.FacilityStock:
        access.own_room(principal, facility, service)
        ctx = get_ctx(request)
        if facility not in ctx.city.facility_by_id:
            raise HTTPException(404, "unknown facility")
        rows = await ctx.reads.facility_stock(facility, ctx.clock())
        items = []
        for row in rows:
            on_hand = row.counted + row.moved
            daily = Decimal(row.used_7d) / 7
            items.append(
                r.StockItem(
                    item=row.item,
                    on_hand=on_hand,
                    counted_at=row.counted_at,
                    average_daily_use_7d=round(float(daily), 2),
                    days_of_cover=round(float(on_hand / daily), 1) if daily > 0 else None,
                )
            )
        return r.FacilityStock(facility=facility, items=items, **await _fresh(ctx))

    @router.get("/alerts", summary="Drug alerts, newest first")
    async def alerts(
        request: Request,
        principal: Annotated[Principal, Depends(alerts_reader)],
        district: str | None = None,
        since: AwareDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> r.Alerts:
        ctx = get_ctx(request)
        if district is not None:
            district_or_404(ctx, district)
        if principal.kind is access.FACILITY:
            room = ctx.city.facility_by_id.get(principal.id)
            access.own_district(principal, district, room.district if room else "", service)
        rows = await ctx.reads.alerts(district, since, limit)
        return r.Alerts(alerts=[r.Alert(**row) for row in rows], **await _fresh(ctx))

    return router


def _day(day: date, figures: Day) -> r.DayFigures:
    return r.DayFigures.model_validate({"day": day, **to_json(figures)})
