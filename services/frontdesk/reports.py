"""What a tablet sends (a :class:`DeskReport`) and which ingest line it becomes (pure: no I/O).

A desk report names its kind, its idempotency key (chosen by the tablet when the thing happened,
kept while it waits offline), when it happened, the fields of the ingest request, and optionally
the check-in it belongs to (check-out, an incident in a booth, a referral for that visit). The
desk adds the room (``facility_id``) from the staff member's session and the ``visit_id`` from
the board: a tablet can never report for another room, and a report carries the room, not the
person who made it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: Fields the desk sets itself; a tablet may not send them.
RESERVED = frozenset({"facility_id", "occurred_at", "visit_id", "event_id"})
Key = Annotated[str, Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class Kind(StrEnum):
    CHECKIN = "checkin"
    REFUSAL = "refusal"
    CHECKOUT = "checkout"
    INCIDENT = "incident"
    DRUG_CHECK = "drug_check"
    REFERRAL = "referral"
    SERVICE = "service"
    DISPENSED = "dispensed"
    SHARPS = "sharps"
    DELIVERY = "delivery"
    COUNT = "count"


#: kind -> (ingest service, route)
TARGETS: dict[Kind, tuple[str, str]] = {
    Kind.CHECKIN: ("intake", "/visits"),
    Kind.REFUSAL: ("intake", "/refusals"),
    Kind.CHECKOUT: ("intake", "/visits/end"),
    Kind.REFERRAL: ("intake", "/referrals"),
    Kind.SERVICE: ("intake", "/services"),
    Kind.INCIDENT: ("incident", "/incidents"),
    Kind.DRUG_CHECK: ("incident", "/drug-checks"),
    Kind.DISPENSED: ("supply", "/supplies/dispensed"),
    Kind.SHARPS: ("supply", "/sharps/returned"),
    Kind.DELIVERY: ("supply", "/stock/deliveries"),
    Kind.COUNT: ("supply", "/stock/counts"),
}


class DeskReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    key: Key
    occurred_at: AwareDatetime
    fields: dict[str, Any] = {}
    checkin_key: Key | None = None


class Refused(ValueError):
    """A report the desk itself refuses (final, 4xx): ``field`` names what is wrong."""

    def __init__(self, status: int, field: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.field, self.msg = status, field, msg

    def result(self) -> dict[str, Any]:
        return {"status": self.status, "body": [{"loc": ["fields", self.field], "msg": self.msg}]}


def check(report: DeskReport, booths: int, code_pattern: str) -> None:
    """Raise :class:`Refused` for what the desk can tell is wrong before sending anything."""
    for name in RESERVED & report.fields.keys():
        raise Refused(422, name, "is set by the desk, not by the tablet")
    if report.kind is Kind.CHECKOUT and report.checkin_key is None:
        raise Refused(422, "checkin_key", "a check-out names its check-in")
    if report.kind is Kind.CHECKIN:
        code = report.fields.get("client_code")
        if not isinstance(code, str) or not re.fullmatch(code_pattern, code):
            raise Refused(422, "client_code", "does not match the room's code format")
        booth = report.fields.get("booth")
        if not isinstance(booth, int) or not 1 <= booth <= booths:
            raise Refused(422, "booth", f"must be a booth of this room (1..{booths})")


def ingest_line(report: DeskReport, facility: str, visit_id: str | None) -> dict[str, Any]:
    """The ``/v1/batch`` line for ``report`` (see :mod:`shared.ingest.batch`)."""
    body: dict[str, Any] = {
        **report.fields,
        "facility_id": facility,
        "occurred_at": report.occurred_at.isoformat(),
    }
    if visit_id is not None:
        body["visit_id"] = visit_id
    return {"route": TARGETS[report.kind][1], "idempotency_key": report.key, "body": body}
