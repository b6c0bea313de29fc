"""The public API's routes (port 8005): released, suppressed figures only; no token.

``GET /v1/public/{period}/{start}`` answers the released table of one day, ISO week (starting on
a Monday) or month (starting on its first day): every district and the city, hidden cells as
null (docs/public-figures.md). A period that is not released yet (or starts before public
figures began) is a 404 that says when it will be; a start that does not begin such a period
is a 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from services.projection.release_periods import Period, PeriodKind
from services.projection.releases import NotReleased, Releaser
from services.projection.responses import PublicLatest, PublicRelease


def build_public_router(get: Callable[[Request], Releaser]) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/public/latest",
        summary="The most recent released day, week and month",
    )
    async def latest(request: Request) -> PublicLatest:
        releaser = get(request)
        now = releaser.clock()
        out: dict[str, Any] = {}
        for kind in PeriodKind:
            p = releaser.rule.latest(kind, now)
            out[kind.value] = p.start if releaser.public(p, now) else None
        return PublicLatest.model_validate(out)

    @router.get(
        "/public/{period}/{start}",
        summary="A released period's figures per district and for the city, small counts hidden",
        responses={
            404: {"description": "not released (yet)"},
            422: {"description": "start does not begin a period of that kind"},
        },
    )
    async def released(request: Request, period: PeriodKind, start: date) -> PublicRelease:
        releaser = get(request)
        try:
            p = Period.of(period, start)
        except ValueError as exc:
            raise HTTPException(
                422, detail=[{"loc": ["path", "start"], "msg": str(exc), "type": "value_error"}]
            ) from None
        try:
            release = await releaser.get(p)
        except NotReleased:
            when = releaser.rule.release_time(p).isoformat()
            if p.start < releaser.since:
                raise HTTPException(404, f"public figures begin {releaser.since}") from None
            raise HTTPException(404, f"{p.name} is released at {when}") from None
        return PublicRelease.model_validate(release.public(releaser.districts))

    return router
