"""Routes of an ingest API, built from declarative :class:`IngestRoute` specs.

Every route does the same, in this order:
1. authenticate the bearer token (401) and check the principal may report for the facility or
   district named in the body (403);
2. validate the body (pydantic; 422 naming the field) and the event time window (422);
3. build the event payload (the service's own ``to_payload``: pseudonymise, issue ids);
4. idempotency: under an ``Idempotency-Key`` header (or a client-supplied ``event_id``) the same
   request returns the same answer (same status and body) and publishes nothing new, across
   restarts. Keys are scoped to (principal, route); a key reused for a different body is 409.
   A client-supplied ``event_id`` is unique per principal across every route and service: used
   again with a different body (or on another route) it is 409, whatever the Idempotency-Key;
5. publish to Kafka and answer 202 only once the broker acknowledged; 503 + Retry-After otherwise.

Invariant: nothing is answered 202 that Kafka did not acknowledge; a retry with the same key after
a 503 publishes the same event (same id), so downstream dedup by (source, id) counts it once; and
no two different reports ever share one (source, id), so that dedup never drops a real report.
"""

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.auth import Principal, PrincipalKind, TokenRegistry
from shared.city import City, PseudonymScope
from shared.events.envelope import (
    Envelope,
    district_source,
    facility_source,
    from_record_json,
    to_record_json,
)
from shared.events.payloads import Payload
from shared.http_auth import bearer_principal, forbidden
from shared.ingest.ports import (
    EventPublisher,
    IdempotencyRecord,
    IdempotencyStore,
    PublishError,
    StoreUnavailable,
)
from shared.metrics import INGEST_EVENTS, PUBLISH_ERRORS, PUBLISH_LATENCY
from shared.privacy import CITY_SCOPE, Pseudonymiser
from shared.settings import IngestSettings

FacilityId = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$", examples=["halmtorv"])]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


class Report(BaseModel):
    """Fields every report carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    occurred_at: AwareDatetime = Field(
        description="When it happened at the facility (with time zone).",
        examples=["2026-11-28T10:15:00+01:00"],
    )
    event_id: uuid.UUID | None = Field(
        default=None,
        description="Optional client-chosen event id; also serves as the idempotency key.",
    )


def request_examples(*bodies: dict[str, Any]) -> ConfigDict:
    """``model_config`` for a request model documenting ``bodies`` as its OpenAPI examples
    (``occurred_at`` is filled in). Merged with the inherited config (frozen, extra forbidden)."""
    at = "2026-11-28T10:15:00+01:00"
    return ConfigDict(json_schema_extra={"examples": [{"occurred_at": at, **b} for b in bodies]})


class FacilityReport(Report):
    """A report made by a facility about itself."""

    facility_id: FacilityId


class DistrictReport(Report):
    """A report about a district (e.g. street needle sweeps by sanitation teams)."""

    district: FacilityId


class Scope(StrEnum):
    FACILITY = "facility"  # a facility's token, for its own facility only
    SANITATION = "sanitation"  # a sanitation team's token, for any district


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What ``to_payload`` may use: the ids issued for this request and the pseudonymiser."""

    event_id: uuid.UUID
    facility_id: str | None
    _pseudonymiser: Pseudonymiser
    pseudonym_scope: PseudonymScope = PseudonymScope.FACILITY

    def pseudonym(self, client_code: str) -> str:
        """Keyed pseudonym of a client's code, in the city's pseudonym scope (this facility, or
        the whole city); the clear code goes no further. Made under :attr:`pseudonym_key`."""
        if self.facility_id is None:
            raise ValueError("pseudonyms are issued for facility reports only")
        scope_id = CITY_SCOPE if self.pseudonym_scope is PseudonymScope.CITY else self.facility_id
        return self._pseudonymiser.pseudonym(scope_id, client_code)

    @property
    def pseudonym_key(self) -> str:
        """Id of the secret the pseudonyms of this request are made under."""
        return self._pseudonymiser.key_id

    @staticmethod
    def new_id() -> str:
        """A fresh opaque id (visits, incidents): random, reveals nothing."""
        return uuid.uuid4().hex


R = TypeVar("R", bound=Report)


@dataclass(frozen=True)
class IngestRoute(Generic[R]):
    """One POST endpoint: its body model and how a valid body becomes an event payload."""

    path: str
    request_model: type[R]
    to_payload: Callable[[R, IngestContext], Payload]
    summary: str
    scope: Scope = Scope.FACILITY
    #: Payload fields echoed in the 202 answer (ids the service issued, e.g. ``visit_id``).
    echo: tuple[str, ...] = ()
    description: str = ""


@dataclass
class IngestDeps:
    """Everything the routes need; built by the service's bootstrap (or by tests, with fakes)."""

    service: str
    city: City
    tokens: TokenRegistry
    pseudonymiser: Pseudonymiser
    publisher: EventPublisher
    idempotency: IdempotencyStore
    settings: IngestSettings
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Accepted(BaseModel):
    event_id: uuid.UUID
    type: str
    model_config = ConfigDict(extra="allow")


class InvalidField(ValueError):
    """Raised by a route's ``to_payload`` for a cross-field rule: 422 naming ``field``."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg)
        self.field = field
        self.msg = msg


def _field_error(loc: str, msg: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body", loc], "msg": msg, "type": "value_error"}],
    )


def bearer_authenticator(
    get_deps: Callable[[Request], IngestDeps],
) -> Callable[..., Awaitable[Principal]]:
    """The FastAPI dependency turning ``Authorization: Bearer ...`` into a principal (else 401)."""

    async def authenticate(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        deps = get_deps(request)
        return bearer_principal(deps.tokens, deps.service, authorization)

    return authenticate


def build_router(
    routes: Sequence[IngestRoute[Any]],
    get_deps: Callable[[Request], IngestDeps],
) -> APIRouter:
    """An APIRouter with one POST endpoint per route spec."""
    router = APIRouter()
    authenticate = bearer_authenticator(get_deps)
    for route in routes:
        router.add_api_route(
            route.path,
            _endpoint(route, get_deps, authenticate),
            methods=["POST"],
            status_code=202,
            summary=route.summary,
            description=route.description,
            response_model=Accepted,
            responses={
                401: {"description": "missing or invalid token"},
                403: {"description": "token may not report for this facility/district"},
                409: {
                    "description": "Idempotency-Key or event_id reused with a different body "
                    "or on another route"
                },
                422: {"description": "invalid field (named in detail[].loc)"},
                503: {"description": "Kafka unavailable; retry after Retry-After"},
            },
        )
    return router


def _endpoint(
    route: IngestRoute[Any],
    get_deps: Callable[[Request], IngestDeps],
    authenticate: Callable[..., Awaitable[Principal]],
) -> Callable[..., Any]:
    model = route.request_model

    async def endpoint(
        request: Request,
        principal: Annotated[Principal, Depends(authenticate)],
        body: Report,  # replaced by the route's own model below
        idempotency_key: Annotated[IdempotencyKey | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        deps = get_deps(request)
        source, facility_id = _authorise(route, body, principal, deps)
        _check_time_window(body.occurred_at, deps)
        event_id = body.event_id or uuid.uuid4()
        ctx = IngestContext(
            event_id=event_id,
            facility_id=facility_id,
            _pseudonymiser=deps.pseudonymiser,
            pseudonym_scope=deps.city.pseudonym_scope,
        )
        try:
            payload = route.to_payload(body, ctx)
        except InvalidField as exc:
            raise _field_error(exc.field, exc.msg) from None
        except ValueError as exc:  # cross-field rules of the service
            raise _field_error("body", str(exc)) from None
        envelope = Envelope.wrap(payload, id=event_id, source=source, time=body.occurred_at)
        response = {
            "event_id": str(event_id),
            "type": envelope.type,
            **{name: getattr(payload, name) for name in route.echo},
        }
        if idempotency_key is None and body.event_id is None:
            await _publish(deps, envelope)
            _accepted(deps, envelope)
            return JSONResponse(status_code=202, content=response)
        route_id = f"{deps.service}{route.path}"
        fingerprint = deps.pseudonymiser.fingerprint(
            route_id.encode() + b"\x1f" + body.model_dump_json().encode()
        )
        try:
            record, fresh = await deps.idempotency.claim(
                IdempotencyRecord(
                    scope=f"{principal.id}\x1f{route_id}",
                    key=idempotency_key or f"event_id:{body.event_id}",
                    fingerprint=fingerprint,
                    envelope_json=to_record_json(envelope),
                    response=response,
                    event_key=f"{principal.id}\x1f{body.event_id}" if body.event_id else None,
                )
            )
            if record.fingerprint != fingerprint:
                raise HTTPException(
                    409,
                    "Idempotency-Key or event_id was already used with a different body "
                    "or on another route",
                )
            if not record.published:
                await _publish(deps, from_record_json(record.envelope_json))
                await deps.idempotency.mark_published(record.scope, record.key)
                if fresh:
                    _accepted(deps, envelope)
        except StoreUnavailable:
            raise HTTPException(
                503,
                "idempotency store unavailable; retry with the same Idempotency-Key",
                headers={"Retry-After": str(deps.settings.retry_after_s)},
            ) from None
        if not fresh:
            INGEST_EVENTS.labels(deps.service, envelope.type, "replayed").inc()
        return JSONResponse(
            status_code=202,
            content=record.response,
            headers={"Idempotent-Replayed": "false" if fresh else "true"},
        )

    endpoint.__annotations__["body"] = model  # FastAPI validates against the route's model
    endpoint.__name__ = "post_" + route.path.strip("/").replace("/", "_").replace("-", "_")
    endpoint.__doc__ = route.description or route.summary
    return endpoint


def _authorise(
    route: IngestRoute[Any], body: Report, principal: Principal, deps: IngestDeps
) -> tuple[str, str | None]:
    """The event's CloudEvents source and facility id, or 403."""
    if route.scope is Scope.FACILITY:
        assert isinstance(body, FacilityReport)
        if principal.kind is not PrincipalKind.FACILITY or principal.id != body.facility_id:
            raise forbidden(
                deps.service, f"this token may not report for facility_id {body.facility_id!r}"
            )
        if body.facility_id not in deps.city.facility_by_id:
            raise _field_error("facility_id", "unknown facility")
        return facility_source(body.facility_id), body.facility_id
    assert isinstance(body, DistrictReport)
    if principal.kind is not PrincipalKind.SANITATION:
        raise forbidden(deps.service, "only sanitation team tokens may report street collections")
    if body.district not in deps.city.district_by_id:
        raise _field_error("district", "unknown district")
    return district_source(body.district), None


def _check_time_window(occurred_at: datetime, deps: IngestDeps) -> None:
    now = deps.clock()
    if occurred_at > now + timedelta(seconds=deps.settings.clock_skew_s):
        raise _field_error(
            "occurred_at",
            "is in the future (beyond the allowed clock skew of "
            f"{deps.settings.clock_skew_s:.0f} s)",
        )
    if occurred_at < now - timedelta(days=deps.settings.horizon_days):
        raise _field_error(
            "occurred_at",
            f"is older than the reporting horizon of {deps.settings.horizon_days:g} days",
        )


async def _publish(deps: IngestDeps, envelope: Envelope) -> None:
    start = time.perf_counter()
    try:
        await deps.publisher.publish(envelope)
    except PublishError:
        PUBLISH_ERRORS.labels(deps.service, envelope.topic).inc()
        raise HTTPException(
            503,
            "event store (Kafka) unavailable; retry with the same Idempotency-Key",
            headers={"Retry-After": str(deps.settings.retry_after_s)},
        ) from None
    PUBLISH_LATENCY.labels(deps.service, envelope.topic).observe(time.perf_counter() - start)


def _accepted(deps: IngestDeps, envelope: Envelope) -> None:
    INGEST_EVENTS.labels(deps.service, envelope.type, "accepted").inc()
