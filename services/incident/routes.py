"""Incident's request models and how each becomes an event. The mechanism is in shared.ingest.

The service issues ``incident_id`` (echoed in the 202 answer, so staff can refer to the incident
later); a drug-check result names the substance the client expected and what the check found.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from shared.events import payloads as p
from shared.events.vocabulary import IncidentKind, Outcome, Severity, Substance
from shared.ingest.api import FacilityReport, IngestContext, IngestRoute, request_examples


class IncidentRequest(FacilityReport):
    model_config = request_examples(
        {
            "facility_id": "halmtorv",
            "kind": "opioid_overdose",
            "severity": "severe",
            "life_threatening": True,
            "interventions": {"naloxone_doses": 2, "oxygen": True, "rescue_breathing": True},
            "outcome": "recovered_on_site",
            "suspected_substance": "heroin",
        },
        {
            "facility_id": "halmtorv",
            "kind": "violence",
            "severity": "low",
            "life_threatening": False,
            "outcome": "left",
        },
    )

    kind: IncidentKind
    severity: Severity
    life_threatening: bool = Field(
        description="Staff judge the person would probably have died without treatment."
    )
    interventions: p.Interventions = Field(
        default=p.Interventions(),
        description="What staff did (naloxone doses, oxygen, rescue breathing, CPR, ambulance "
        "called).",
    )
    outcome: Outcome
    suspected_substance: Substance | None = None
    visit_id: p.VisitId | None = Field(default=None, description="The visit it happened in.")


class DrugCheckRequest(FacilityReport):
    model_config = request_examples(
        {"facility_id": "halmtorv", "expected": "heroin", "found": ["heroin", "fentanyl"]}
    )

    expected: Substance = Field(description="What the client believed the sample was.")
    found: Annotated[tuple[Substance, ...], Field(min_length=1, max_length=10)] = Field(
        description="What the check found. Anything besides `expected` (and `unknown`) raises a "
        "drug alert for the district."
    )
    visit_id: p.VisitId | None = None


def incident(r: IncidentRequest, ctx: IngestContext) -> p.IncidentReported:
    return p.IncidentReported(
        incident_id=ctx.new_id(),
        kind=r.kind,
        severity=r.severity,
        life_threatening=r.life_threatening,
        interventions=r.interventions,
        outcome=r.outcome,
        suspected_substance=r.suspected_substance,
        visit_id=r.visit_id,
    )


def drug_check(r: DrugCheckRequest, ctx: IngestContext) -> p.DrugCheckResult:
    return p.DrugCheckResult(expected=r.expected, found=r.found, visit_id=r.visit_id)


ROUTES: tuple[IngestRoute[Any], ...] = (
    IngestRoute(
        "/incidents",
        IncidentRequest,
        incident,
        "An incident (overdose, seizure, ...)",
        echo=("incident_id",),
        description="Overdoses (opioid overdose, stimulant overamping) count towards the "
        "district's drug alert threshold.",
    ),
    IngestRoute("/drug-checks", DrugCheckRequest, drug_check, "A drug-check result"),
)
