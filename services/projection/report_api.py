"""``GET /v1/reports``: the evidence report as HTML or PDF (its own router; see report/).

Access: the router takes the read API's authentication dependencies from the composition root
(``dependencies``); the internal variant shows small counts and must only be given to roles
allowed to see them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
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


def build_report_router(
    get_ctx: Callable[[Request], ReadContext], dependencies: Sequence[Any] = ()
) -> APIRouter:
    router = APIRouter(dependencies=list(dependencies))

    @router.get(
        "/reports",
        summary="The evidence report for a scope and period (HTML or PDF)",
        response_class=Response,
        responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
    )
    async def report(
        request: Request,
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
        req = report_request(ctx, variant, scope, period, anchor, start, end)
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
