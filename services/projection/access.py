"""Who may read what on the internal read API (port 8004).

| kind       | may read                                                            |
|------------|---------------------------------------------------------------------|
| ops        | everything internal (figures, live and stock of every room, alerts, /metrics) |
| analyst    | the directory, district and city figures of closed days (before today: a   |
|            | single-room district's today would be a live per-room view): daily      |
|            | figures, period totals and reports of the city or a district, street    |
|            | collections; no room scope, no alerts                                    |
| facility   | the directory, its own room's live and stock view, its own room's daily |
|            | figures, period totals and reports, its district's drug alerts (the     |
|            | front desk shows them to the room's staff)                              |
| metrics    | /metrics only (shared.http)                                          |
| sanitation | nothing here (it reports street collections)                        |

A request without a valid token is a 401, a valid token of a kind not listed for the route or a
facility token for another room a 403; both are counted in ``dcr_auth_failures_total``.
"""

from __future__ import annotations

from datetime import date

from services.projection.periods import Scope
from shared.auth import Principal, PrincipalKind
from shared.http_auth import forbidden

OPS = PrincipalKind.OPS
ANALYST = PrincipalKind.ANALYST
FACILITY = PrincipalKind.FACILITY

#: The districts and their rooms (configuration, no figures).
DIRECTORY = frozenset({OPS, ANALYST, FACILITY})
#: Unsuppressed district and city figures.
FIGURES = frozenset({OPS, ANALYST})
#: One room's live and stock view (a facility token: its own room only, see :func:`own_room`).
ROOM = frozenset({OPS, FACILITY})
#: Drug alerts: ops, and a facility for its own district (:func:`own_district`).
ALERTS = frozenset({OPS, FACILITY})
#: Period totals and reports (:func:`scope_allowed` and :func:`closed_days_only` narrow them).
PERIODS = frozenset({OPS, ANALYST, FACILITY})
#: Everything else.
INTERNAL = frozenset({OPS})


def own_room(principal: Principal, facility: str, service: str) -> None:
    """403 unless ``principal`` is ops or the facility ``facility`` itself."""
    if principal.kind is FACILITY and principal.id != facility:
        raise forbidden(service, f"a facility token reads only its own room, not {facility!r}")


def closed_days_only(principal: Principal, last: date, today: date, service: str) -> None:
    """403 if an analyst asks for today or later (three districts have one room each: their
    figures of today would show that room live)."""
    if principal.kind is ANALYST and last >= today:
        raise forbidden(service, "an analyst token reads closed days only ('to' before today)")


def own_district(
    principal: Principal, district: str | None, room_district: str, service: str
) -> None:
    """403 unless ``principal`` is ops, or a facility asking for its own district's alerts."""
    if principal.kind is FACILITY and district != room_district:
        raise forbidden(service, "a facility token reads only its own district's alerts")


def scope_allowed(principal: Principal, scope: Scope, service: str) -> None:
    """403 unless ``principal`` may read ``scope``'s period totals and reports: ops any scope;
    an analyst the city or a district (over closed days: :func:`closed_days_only`); a facility
    its own room only."""
    if principal.kind is ANALYST and scope.kind == "room":
        raise forbidden(service, "an analyst token reads the city and districts, not a room")
    if principal.kind is FACILITY and (scope.kind != "room" or scope.id != principal.id):
        raise forbidden(service, "a facility token reads only its own room ('scope=room:<id>')")


def room_figures(principal: Principal, facility: str, service: str) -> None:
    """403 unless ``principal`` is ops or the facility ``facility`` itself (an analyst reads no
    room: three districts have one room each, and a room's own figures are not the city's)."""
    if principal.kind is ANALYST:
        raise forbidden(service, "an analyst token reads the city and districts, not a room")
    own_room(principal, facility, service)


def not_facility(principal: Principal, service: str) -> None:
    """403 for a facility token (district-wide figures that are not about its room)."""
    if principal.kind is FACILITY:
        raise forbidden(service, "a facility token reads only its own room")
