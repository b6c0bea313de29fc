"""Intake's request models and how each becomes an event. The mechanism is in shared.ingest."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field

from shared.events import payloads as p
from shared.events.vocabulary import (
    OnSiteService,
    ReferralKind,
    RefusalReason,
    Route,
    Substance,
    VoidReason,
)
from shared.ingest.api import (
    FacilityReport,
    IngestContext,
    IngestRoute,
    InvalidField,
    request_examples,
)

#: Visit ids issued by intake: "t", the visit's start (unix seconds, 10 hex digits), 22 random hex
#: digits. The start in the id lets the end of a visit be checked against it without a lookup;
#: it reveals nothing the visit.started event does not carry next to the id anyway. Ids of the
#: older form (32 random hex digits) are not checked.
_TIMED_VISIT_ID = re.compile(r"^t([0-9a-f]{10})[0-9a-f]{22}$")


def timed_visit_id(started_at: datetime) -> str:
    return f"t{int(started_at.timestamp()):010x}{uuid.uuid4().hex[:22]}"


def visit_start(visit_id: str) -> datetime | None:
    """The start (to the second, rounded down) encoded in an intake-issued visit id, if any."""
    m = _TIMED_VISIT_ID.match(visit_id)
    return datetime.fromtimestamp(int(m.group(1), 16), UTC) if m else None


ClientCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[\x21-\x7e]+$",
        description="The client's code at this facility. Pseudonymised on arrival: it never leaves "
        "this service in clear.",
        examples=["HT-0042"],
    ),
]


class VisitStartedRequest(FacilityReport):
    model_config = request_examples(
        {
            "facility_id": "halmtorv",
            "client_code": "HT-0042",
            "booth": 4,
            "substances": ["heroin", "cocaine"],
            "route": "inject",
        }
    )

    client_code: ClientCode
    booth: p.Booth | None = None
    substances: Annotated[tuple[Substance, ...], Field(min_length=1, max_length=10)]
    route: Route
    assisted_injection: bool = False
    first_visit: bool = False


class VisitEndedRequest(FacilityReport):
    model_config = request_examples(
        {"facility_id": "halmtorv", "visit_id": "3f9a1c0e5b7d4e2a8c6b1d0f9e8a7c6b"}
    )

    visit_id: p.VisitId


class VisitRefusedRequest(FacilityReport):
    model_config = request_examples(
        {"facility_id": "halmtorv", "reason": "capacity", "client_code": "HT-0042"}
    )

    reason: RefusalReason
    client_code: ClientCode | None = None


class ReferralRequest(FacilityReport):
    model_config = request_examples({"facility_id": "halmtorv", "referral_to": "housing"})

    referral_to: ReferralKind
    visit_id: p.VisitId | None = None


class ServiceGivenRequest(FacilityReport):
    model_config = request_examples({"facility_id": "halmtorv", "service": "wound_care"})

    service: OnSiteService
    visit_id: p.VisitId | None = None


class VoidRequest(FacilityReport):
    model_config = request_examples(
        {
            "facility_id": "halmtorv",
            "target_event_id": "0b6f7e1c-3a52-4d4b-9a55-8c0d2b6a0e11",
            "reason": "mistaken",
        }
    )

    target_event_id: uuid.UUID = Field(
        description="The event_id (from the 202 answer) of this facility's report to retract."
    )
    reason: VoidReason


def visit_started(r: VisitStartedRequest, ctx: IngestContext) -> p.VisitStarted:
    return p.VisitStarted(
        visit_id=timed_visit_id(r.occurred_at),
        client_pseudonym=ctx.pseudonym(r.client_code),
        pseudonym_key=ctx.pseudonym_key,
        booth=r.booth,
        substances=r.substances,
        route=r.route,
        assisted_injection=r.assisted_injection,
        first_visit=r.first_visit,
    )


def visit_ended(r: VisitEndedRequest, ctx: IngestContext) -> p.VisitEnded:
    """422 on ``occurred_at`` when the visit would end before it started (an end later than the
    longest plausible visit is accepted: the projection closes it by rule, without duration)."""
    started = visit_start(r.visit_id)
    if started is not None and r.occurred_at < started:
        raise InvalidField("occurred_at", "is before the start of this visit")
    return p.VisitEnded(visit_id=r.visit_id)


def visit_refused(r: VisitRefusedRequest, ctx: IngestContext) -> p.VisitRefused:
    if r.client_code is None:
        return p.VisitRefused(reason=r.reason)
    return p.VisitRefused(
        reason=r.reason,
        client_pseudonym=ctx.pseudonym(r.client_code),
        pseudonym_key=ctx.pseudonym_key,
    )


def referral(r: ReferralRequest, ctx: IngestContext) -> p.ReferralMade:
    return p.ReferralMade(referral_to=r.referral_to, visit_id=r.visit_id)


def service_given(r: ServiceGivenRequest, ctx: IngestContext) -> p.ServiceGiven:
    return p.ServiceGiven(service=r.service, visit_id=r.visit_id)


def void(r: VoidRequest, ctx: IngestContext) -> p.ReportVoided:
    if r.target_event_id == ctx.event_id:
        raise InvalidField("target_event_id", "a report cannot void itself")
    return p.ReportVoided(target_id=r.target_event_id, reason=r.reason)


ROUTES: tuple[IngestRoute[Any], ...] = (
    IngestRoute(
        "/visits",
        VisitStartedRequest,
        visit_started,
        "Check a client in (visit started)",
        echo=("visit_id",),
    ),
    IngestRoute("/visits/end", VisitEndedRequest, visit_ended, "A visit ended"),
    IngestRoute("/refusals", VisitRefusedRequest, visit_refused, "A client was turned away"),
    IngestRoute("/referrals", ReferralRequest, referral, "A referral was made"),
    IngestRoute("/services", ServiceGivenRequest, service_given, "An on-site service was given"),
    IngestRoute(
        "/corrections/void",
        VoidRequest,
        void,
        "Retract one of this facility's own reports (any service's)",
        description="Every read model drops the report, whether it was already applied or "
        "arrives later. Only reports of the same facility can be voided. To amend a report, "
        "void it and send the corrected one as a new report. Stock counts are amended by a new "
        "count, not voided.",
    ),
)
