"""The front desk's composition root (``uvicorn services.frontdesk.app:create_app --factory``).

Serves the tablet app (plain HTML/CSS/JS, a service worker for offline use) and its JSON API:

- ``POST /api/login`` / ``POST /api/logout`` / ``GET /api/me``: per-person sign-in, a signed
  HttpOnly SameSite=Strict session cookie that expires; 5 failures for a username within 5
  minutes make further attempts 429 until the oldest one is 5 minutes old;
- ``GET /api/board``: every booth of the room (polled by the tablets every 0.5 s);
- ``POST /api/reports``: the tablet's queued reports, handled in order (:mod:`.desk`);
- ``GET /api/room``: the room's figures today, stock with days of cover, open drug alerts of its
  district (from the projection's read API).

Every ``/api`` call needs a session; every POST also the ``X-Frontdesk`` header (CSRF).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import yaml
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from services.frontdesk.board import Board, CodeMemory
from services.frontdesk.desk import Desk
from services.frontdesk.platform import IngestClient, ReadApi
from services.frontdesk.reports import DeskReport
from services.frontdesk.session import COOKIE, CSRF_HEADER, Session, SessionSigner
from services.frontdesk.settings import FrontdeskSettings
from services.frontdesk.staff import StaffDirectory
from services.frontdesk.throttle import SignInThrottle
from shared.bootstrap import Platform, close_pool
from shared.city import City
from shared.events import vocabulary as v
from shared.http import install_common

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
MAX_REPORTS = 200


@dataclass
class FrontdeskDeps:
    city: City
    settings: FrontdeskSettings
    staff: StaffDirectory
    signer: SessionSigner
    desk: Desk
    read_api: ReadApi
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _ingest_tokens(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    return {str(k): str(val) for k, val in raw.items()}


@dataclass(frozen=True)
class FrontdeskConfig:
    """The front desk's settings, built once at its composition root (each from its ``DCR_*``
    variables by default; tests pass their own)."""

    platform: Platform = field(default_factory=Platform)
    #: Refuses the development session secret in prod when built, before anything runs.
    settings: FrontdeskSettings = field(default_factory=FrontdeskSettings)


@asynccontextmanager
async def real_deps(config: FrontdeskConfig) -> AsyncIterator[FrontdeskDeps]:
    settings, platform = config.settings, config.platform
    city = platform.city
    async with AsyncExitStack() as stack:
        pool = await platform.pool(max_size=min(platform.db.pool_max, 5))
        stack.push_async_callback(close_pool, pool)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=settings.ingest_timeout_s))
        room_tokens = _ingest_tokens(settings.ingest_tokens_file)
        ingest = IngestClient(
            {"intake": settings.intake_url, "supply": settings.supply_url,
             "incident": settings.incident_url},
            room_tokens,
            http,
        )  # fmt: skip
        token = settings.read_api_token.get_secret_value() if settings.read_api_token else None
        yield FrontdeskDeps(
            city=city,
            settings=settings,
            staff=StaffDirectory.from_file(settings.staff_file),
            signer=SessionSigner(
                settings.session_secret.get_secret_value().encode(),
                timedelta(seconds=settings.session_ttl_s),
            ),
            desk=Desk(
                board=Board(pool),
                codes=CodeMemory(),
                ingest=ingest,
                booths=lambda f: city.facility_by_id[f].booths,
                code_pattern=settings.client_code_pattern,
            ),
            read_api=ReadApi(settings.read_api_url, token, room_tokens, http),
        )


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class Reports(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reports: Annotated[list[DeskReport], Field(min_length=1, max_length=MAX_REPORTS)]


def _deps(request: Request) -> FrontdeskDeps:
    d: FrontdeskDeps = request.app.state.deps
    return d


def _session(request: Request) -> Session:
    d = _deps(request)
    session = d.signer.read(request.cookies.get(COOKIE), d.clock())
    if session is None or session.facility not in d.city.facility_by_id:
        raise HTTPException(401, "sign in")
    if request.method != "GET" and request.headers.get(CSRF_HEADER) != "1":
        raise HTTPException(403, f"missing {CSRF_HEADER} header")
    return session


SessionDep = Annotated[Session, Depends(_session)]


def _vocabularies() -> dict[str, list[str]]:
    enums: dict[str, type[Any]] = {
        "substance": v.Substance,
        "route": v.Route,
        "refusal_reason": v.RefusalReason,
        "referral": v.ReferralKind,
        "service": v.OnSiteService,
        "supply_item": v.SupplyItem,
        "incident_kind": v.IncidentKind,
        "severity": v.Severity,
        "outcome": v.Outcome,
    }
    return {name: [m.value for m in enum] for name, enum in enums.items()}


def create_app(deps: FrontdeskDeps | None = None, config: FrontdeskConfig | None = None) -> FastAPI:
    """``deps`` (tests): no client is built and no settings are read; else the clients are
    built from ``config`` (default: the environment's, built once here)."""
    real_config = (config or FrontdeskConfig()) if deps is None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if real_config is None:
                app.state.deps = deps
            else:
                app.state.deps = await stack.enter_async_context(real_deps(real_config))
            log.info("frontdesk ready")
            yield

    app = FastAPI(
        title="dcr-platform front desk",
        description=__doc__ or "",
        version="1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/sw.js", include_in_schema=False)
    async def service_worker() -> FileResponse:
        return FileResponse(
            STATIC / "sw.js",
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.post("/api/login")
    async def login(request: Request, body: Login, response: Response) -> dict[str, Any]:
        d = _deps(request)
        if request.headers.get(CSRF_HEADER) != "1":
            raise HTTPException(403, f"missing {CSRF_HEADER} header")
        now = d.clock()
        wait = d.throttle.retry_after(body.username, now)
        if wait is not None:
            raise HTTPException(
                429, "too many failed sign-ins; try again later", {"Retry-After": str(wait)}
            )
        member = await asyncio.to_thread(d.staff.verify, body.username, body.password)
        if member is None or member.facility not in d.city.facility_by_id:
            d.throttle.failed(body.username, now)
            raise HTTPException(401, "unknown user or wrong password")
        d.throttle.succeeded(body.username)
        response.set_cookie(
            COOKIE,
            d.signer.issue(member.username, member.facility, d.clock()),
            max_age=int(d.signer.ttl.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=d.settings.secure_cookie,
            path="/",
        )
        return {"username": member.username, "facility": member.facility}

    @app.post("/api/logout")
    async def logout(response: Response, _: SessionDep) -> dict[str, bool]:
        response.delete_cookie(COOKIE, path="/", samesite="strict", httponly=True)
        return {"signed_out": True}

    @app.get("/api/me")
    async def me(request: Request, session: SessionDep) -> dict[str, Any]:
        d = _deps(request)
        f = d.city.facility_by_id[session.facility]
        return {
            "username": session.username,
            "facility": f.id,
            "name": f.name,
            "district": f.district,
            "booths": f.booths,
            "expires": session.expires.isoformat(),
            "warning_minutes": d.settings.booth_warning_minutes,
            "client_code_pattern": d.settings.client_code_pattern,
            "vocabularies": _vocabularies(),
        }

    @app.get("/api/board")
    async def board(request: Request, session: SessionDep) -> dict[str, Any]:
        d = _deps(request)
        now = d.clock()
        booths = await d.desk.board_view(session.facility, now, d.settings.booth_warning_minutes)
        return {"now": now.isoformat(), "booths": booths}

    @app.post("/api/reports")
    async def reports(request: Request, body: Reports, session: SessionDep) -> dict[str, Any]:
        d = _deps(request)
        results = await d.desk.handle(session.facility, body.reports)
        return {
            "results": [{"key": r.key, **res} for r, res in zip(body.reports, results, strict=True)]
        }

    @app.get("/api/room")
    async def room(request: Request, session: SessionDep) -> dict[str, Any]:
        d = _deps(request)
        f = d.city.facility_by_id[session.facility]
        live, stock, alerts = await asyncio.gather(
            d.read_api.get(f.id, f"/v1/facilities/{f.id}/live"),
            d.read_api.get(f.id, f"/v1/facilities/{f.id}/stock"),
            d.read_api.get(f.id, "/v1/alerts", district=f.district, limit="20"),
        )
        open_alerts = [a for a in (alerts or {}).get("alerts", []) if a.get("state") == "open"]
        return {
            "live": live,
            "stock": (stock or {}).get("items"),
            "alerts": open_alerts if alerts is not None else None,
        }

    async def health() -> dict[str, bool]:
        return {"database": await _deps_of(app).desk.board.ping()}

    install_common(app, "frontdesk", health, 256 * 1024)
    return app


def _deps_of(app: FastAPI) -> FrontdeskDeps:
    d: FrontdeskDeps = app.state.deps
    return d
