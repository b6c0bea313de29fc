"""One frozen pydantic model per event type: the ``data`` of a CloudEvent.

Invariants: payloads never hold a client's clear code (only the keyed pseudonym), unknown fields
are rejected, counts are bounded so that an absurd value is refused at the door instead of
poisoning a read model.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.events.vocabulary import (
    AlertReason,
    IncidentKind,
    OnSiteService,
    Outcome,
    ReferralKind,
    RefusalReason,
    Route,
    Severity,
    Substance,
    SupplyItem,
    VoidReason,
)

#: Upper bound for any one count in one event (a day's worth for a large facility, times ten).
MAX_COUNT = 10_000
MAX_WEIGHT_KG = 1_000.0

#: Counts are strict integers: ``true`` is not 1 and ``"3"`` is not 3 (422 naming the field).
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
PositiveCount = Annotated[int, Field(strict=True, ge=1, le=MAX_COUNT)]
Booth = Annotated[int, Field(strict=True, ge=1, le=200)]
WeightKg = Annotated[float, Field(strict=True, ge=0, le=MAX_WEIGHT_KG, allow_inf_nan=False)]
#: Opaque identifier of a visit (issued by the intake service).
VisitId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
#: Hex HMAC-SHA256 of a client's facility code. Never the clear code.
Pseudonym = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
DistrictId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
#: Name of the secret a pseudonym was made under (``DCR_PSEUDONYM_KEY_ID``); see shared.privacy.
PseudonymKeyId = Annotated[str, Field(pattern=r"^[a-z0-9]{1,16}$")]
#: Key id of pseudonyms published before key ids existed (schema version 1 of the visit events).
LEGACY_KEY_ID = "k0"


class Payload(BaseModel):
    """Base of every event payload: frozen, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- dcr.visits -------------------------------------------------------------------------------


class VisitStarted(Payload):
    """Schema v2: ``pseudonym_key`` names the secret of ``client_pseudonym`` (v1 had none: the
    upcaster sets :data:`LEGACY_KEY_ID`). Pseudonyms under different keys never match."""

    visit_id: VisitId
    client_pseudonym: Pseudonym
    pseudonym_key: PseudonymKeyId = LEGACY_KEY_ID
    booth: Booth | None = None
    substances: Annotated[tuple[Substance, ...], Field(min_length=1, max_length=10)]
    route: Route
    assisted_injection: bool = False
    first_visit: bool = False


class VisitEnded(Payload):
    visit_id: VisitId


class VisitRefused(Payload):
    """Schema v2: ``pseudonym_key`` as in :class:`VisitStarted` (None without a pseudonym)."""

    reason: RefusalReason
    client_pseudonym: Pseudonym | None = None
    pseudonym_key: PseudonymKeyId | None = None


class ReferralMade(Payload):
    referral_to: ReferralKind
    visit_id: VisitId | None = None


class ServiceGiven(Payload):
    service: OnSiteService
    visit_id: VisitId | None = None


# --- dcr.corrections --------------------------------------------------------------------------


class ReportVoided(Payload):
    """A facility retracts one of its own earlier reports: the event with id ``target_id`` and
    the SAME CloudEvents source (a room can only void its own reports). Every read model
    applies it, whichever of the two events arrives first. To amend a report, void it and send
    the corrected report as a new event."""

    target_id: UUID
    reason: VoidReason


# --- dcr.supplies -----------------------------------------------------------------------------

Items = Annotated[dict[SupplyItem, PositiveCount], Field(min_length=1)]


class SuppliesDispensed(Payload):
    items: Items
    secondary_distribution: bool = False
    visit_id: VisitId | None = None


class _CountOrWeight(Payload):
    count: Count | None = None
    weight_kg: WeightKg | None = None

    @model_validator(mode="after")
    def _count_or_weight(self) -> Self:
        if self.count is None and self.weight_kg is None:
            raise ValueError("give a count, a weight_kg, or both")
        return self


class SharpsReturned(_CountOrWeight):
    pass


class StockDelivered(Payload):
    items: Items


class StockCounted(Payload):
    """An inventory count: the on-hand quantity per item replaces the running figure."""

    items: Annotated[dict[SupplyItem, Count], Field(min_length=1)]


class StreetNeedlesCollected(_CountOrWeight):
    """Reported by the city's sanitation teams, per district (not by a facility)."""

    district: DistrictId
    area: Annotated[str, Field(min_length=1, max_length=120)]


# --- dcr.incidents ----------------------------------------------------------------------------


class Interventions(Payload):
    naloxone_doses: Annotated[int, Field(strict=True, ge=0, le=20)] = 0
    oxygen: bool = False
    rescue_breathing: bool = False
    cpr: bool = False
    ambulance_called: bool = False


class IncidentReported(Payload):
    incident_id: VisitId
    kind: IncidentKind
    severity: Severity
    #: Staff judge the person would probably have died without treatment.
    life_threatening: bool
    interventions: Interventions = Interventions()
    outcome: Outcome
    suspected_substance: Substance | None = None
    visit_id: VisitId | None = None


class DrugCheckResult(Payload):
    expected: Substance
    found: Annotated[tuple[Substance, ...], Field(min_length=1, max_length=10)]
    visit_id: VisitId | None = None

    @property
    def unexpected(self) -> frozenset[Substance]:
        """Substances found that were not the one expected (e.g. fentanyl in heroin)."""
        return unexpected_substances(self.expected, self.found)


def unexpected_substances(expected: Substance, found: Iterable[Substance]) -> frozenset[Substance]:
    """A drug check's substances found that were not the one expected (nor unknown)."""
    return frozenset(found) - {expected, Substance.UNKNOWN}


class DrugAlertRaised(Payload):
    """Raised by the incident service; once per episode (``episode`` is the dedup key)."""

    alert_id: VisitId
    district: DistrictId
    reason: AlertReason
    episode: Annotated[str, Field(min_length=1, max_length=200)]
    substance: Substance | None = None
    overdoses_in_window: Annotated[int, Field(strict=True, ge=0)] | None = None
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    facility_id: str | None = None
    #: Raised from reports that arrived late: the episode began more than ``late_after`` before
    #: the alert (services.incident.alerting). Absent in records written before it existed.
    late: bool = False

    def window(self) -> tuple[datetime, datetime] | None:
        if self.window_start is None or self.window_end is None:
            return None
        return self.window_start, self.window_end


class DrugAlertAcknowledged(Payload):
    """An ops user took charge of a drug alert (``POST /v1/alerts/{id}/ack``); once per alert.

    ``acknowledged_by`` is the ops principal's id (a team account, not a client)."""

    alert_id: VisitId
    district: DistrictId
    acknowledged_by: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
    #: From the alert being raised (stored by the incident service) to this acknowledgement.
    seconds_to_acknowledge: Annotated[float, Field(ge=0)]


class DrugAlertResolved(Payload):
    """The alert's episode ended: no qualifying report for ``quiet_period_s`` (event time);
    once per alert. ``last_seen`` is the event time of the last qualifying report."""

    alert_id: VisitId
    district: DistrictId
    reason: AlertReason
    episode: Annotated[str, Field(min_length=1, max_length=200)]
    last_seen: AwareDatetime
    quiet_period_s: Annotated[int, Field(ge=0)]


class DrugAlertWithdrawn(Payload):
    """A raised drug alert lost its basis: a report it counted was voided by its room and the
    rest no longer reach the threshold (services.incident.alerting, "Corrections"); once per
    alert. ``overdoses_remaining``: overdoses left in its window ``(since - window, since]``."""

    alert_id: VisitId
    district: DistrictId
    reason: AlertReason
    episode: Annotated[str, Field(min_length=1, max_length=200)]
    since: AwareDatetime
    overdoses_remaining: Annotated[int, Field(strict=True, ge=0)]
    threshold: Annotated[int, Field(strict=True, ge=1)]
