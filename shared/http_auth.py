"""Bearer tokens on HTTP: the one place a request's ``Authorization`` header becomes a
:class:`~shared.auth.Principal` (or a 401), and a role check becomes a 403.

Every refusal is counted in ``dcr_auth_failures_total{service, reason}`` with reason
``missing`` (no ``Bearer`` header), ``invalid`` (no principal has that token) or ``forbidden``
(a valid token whose kind may not read this). A 401 carries ``WWW-Authenticate: Bearer``.
Used by the ingest routes, the read API and every service's ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated

from fastapi import Header, HTTPException, Request

from shared.auth import Principal, PrincipalKind, TokenRegistry
from shared.metrics import AUTH_FAILURES

#: Who may scrape ``/metrics``: operations staff and the scraper.
METRICS_READERS: frozenset[PrincipalKind] = frozenset({PrincipalKind.OPS, PrincipalKind.METRICS})


def bearer_principal(tokens: TokenRegistry, service: str, authorization: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer <token>`` header, or a counted 401."""
    if not authorization or not authorization.lower().startswith("bearer "):
        AUTH_FAILURES.labels(service, "missing").inc()
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    principal = tokens.authenticate(authorization[7:].strip())
    if principal is None:
        AUTH_FAILURES.labels(service, "invalid").inc()
        raise HTTPException(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    return principal


def forbidden(service: str, message: str) -> HTTPException:
    """A counted 403 (raise it)."""
    AUTH_FAILURES.labels(service, "forbidden").inc()
    return HTTPException(403, message)


def require_kinds(
    service: str,
    get_tokens: Callable[[Request], TokenRegistry],
    kinds: Collection[PrincipalKind],
) -> Callable[..., Principal]:
    """A FastAPI dependency: the request's principal, which must be of one of ``kinds``."""
    allowed = frozenset(kinds)
    names = ", ".join(sorted(k.value for k in allowed))

    def dependency(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        principal = bearer_principal(get_tokens(request), service, authorization)
        if principal.kind not in allowed:
            raise forbidden(service, f"a {principal.kind.value} token may not read this ({names})")
        return principal

    return dependency
