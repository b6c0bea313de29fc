"""``GET /v1/reports``: the evidence report as HTML or PDF (its own router; see report/).

Access: the composition root passes the dependency that authenticates a reader (``reader``);
:func:`.period_api.report_request` narrows it by role: ops any scope, an analyst the city or a
district over closed periods (figures it may read unsuppressed on the read API anyway), a
facility its own room.
"""

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from services.projection.api import ReadContext
from services.projection.period_api import report_request
from services.projection.report.build import (
    MEDIA_TYPES,
    Format,
    assemble,
    filename,
    render,
)
from shared.auth import Principal


def build_report_router(
    get_ctx: Callable[[Request], ReadContext], reader: Callable[..., Principal], service: str
) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/reports",
        summary="The evidence report for a scope and period (HTML or PDF)",
        response_class=Response,
        responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
    )
    async def report(
        request: Request,
        principal: Annotated[Principal, Depends(reader)],
        scope: Annotated[str, Query(description="city, district:<id> or room:<id>")] = "city",
        period: Annotated[
            str, Query(description="week, month, quarter, year, since-opening or custom")
        ] = "month",
        anchor: Annotated[date | None, Query(description="A day in the period")] = None,
        start: Annotated[date | None, Query(alias="from", description="custom: first day")] = None,
        end: Annotated[date | None, Query(alias="to", description="custom: last day")] = None,
        variant: Annotated[str, Query(description="public or internal")] = "public",
        format: Annotated[Format, Query(description="html or pdf")] = Format.HTML,
    ) -> Response:
        ctx = get_ctx(request)
        req = report_request(ctx, principal, service, variant, scope, period, anchor, start, end)
        facts = await ctx.reads.report_facts(ctx.city, req, ctx.settings.group_id)
        inp = assemble(
            facts,
            ctx.city,
            req,
            threshold=ctx.settings.suppression_threshold,
            build_time=ctx.clock(),
        )
        body = await run_in_threadpool(render, inp, format)
        return Response(
            body,
            media_type=MEDIA_TYPES[format],
            headers={
                "Content-Disposition": f'inline; filename="{filename(req, format)}"',
                "Cache-Control": "no-store",
            },
        )

    return router
