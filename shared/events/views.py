"""What a consumer reads of an event and its payload, whichever decoder made it.

Two representations of one event exist: the contract's :class:`shared.events.envelope.Envelope`
holding a pydantic payload model (intake, the incident service, tests), and the projection's
hot-path :class:`shared.events.fast_decode.Event` holding the payload's msgspec Struct (the
same field names, vocabularies and values; see :mod:`shared.events.fast_decode`). The
:class:`typing.Protocol` classes here name the fields a consumer reads; both representations
satisfy them (the pydantic models statically, checked by mypy at the module's end; the
Structs by construction: their fields are the models' fields, checked by
``tests/unit/test_fast_decode_parity.py``).

A consumer dispatches on :attr:`EventView.type` (the CloudEvents type string, the same object as
the catalogue's key) and reads the payload through the view of that type: the one cast from
``object`` to a view is where the type string is looked up. Nothing here imports an I/O library.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Final, Protocol, cast
from uuid import UUID

from shared.events import payloads as p
from shared.events.catalogue import spec_for
from shared.events.vocabulary import (
    AlertReason,
    IncidentKind,
    OnSiteService,
    Outcome,
    ReferralKind,
    RefusalReason,
    Route,
    Substance,
    SupplyItem,
    VoidReason,
)

#: The catalogue's type strings (the very objects of its keys: comparing is mostly identity).
VISIT_STARTED: Final = spec_for(p.VisitStarted).type
VISIT_ENDED: Final = spec_for(p.VisitEnded).type
VISIT_REFUSED: Final = spec_for(p.VisitRefused).type
REFERRAL_MADE: Final = spec_for(p.ReferralMade).type
SERVICE_GIVEN: Final = spec_for(p.ServiceGiven).type
SUPPLIES_DISPENSED: Final = spec_for(p.SuppliesDispensed).type
SHARPS_RETURNED: Final = spec_for(p.SharpsReturned).type
STOCK_DELIVERED: Final = spec_for(p.StockDelivered).type
STOCK_COUNTED: Final = spec_for(p.StockCounted).type
STREET_NEEDLES_COLLECTED: Final = spec_for(p.StreetNeedlesCollected).type
INCIDENT_REPORTED: Final = spec_for(p.IncidentReported).type
DRUG_CHECK_RESULT: Final = spec_for(p.DrugCheckResult).type
ALERT_RAISED: Final = spec_for(p.DrugAlertRaised).type
ALERT_ACKNOWLEDGED: Final = spec_for(p.DrugAlertAcknowledged).type
ALERT_RESOLVED: Final = spec_for(p.DrugAlertResolved).type
ALERT_WITHDRAWN: Final = spec_for(p.DrugAlertWithdrawn).type
REPORT_VOIDED: Final = spec_for(p.ReportVoided).type


class EventView(Protocol):
    """An event's CloudEvents attributes and payload (``data``: read it through its type's view)."""

    @property
    def id(self) -> UUID | str:
        """The contract's ``UUID``, or the hot path's canonical text of it (read it through
        :func:`event_id_text` where the text is what is needed)."""

    @property
    def type(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def data(self) -> object: ...
    @property
    def facility_id(self) -> str | None: ...
    @property
    def key(self) -> str: ...


def event_id_text(env: EventView) -> str:
    """The canonical text of an event's id (lowercase 8-4-4-4-12): what the hot path's event
    holds already, ``str()`` of the contract's ``UUID``."""
    i = env.id
    return i if isinstance(i, str) else str(i)


class VisitStartedView(Protocol):
    @property
    def visit_id(self) -> str: ...
    @property
    def client_pseudonym(self) -> str: ...
    @property
    def pseudonym_key(self) -> str: ...
    @property
    def substances(self) -> tuple[Substance, ...]: ...
    @property
    def route(self) -> Route: ...
    @property
    def assisted_injection(self) -> bool: ...
    @property
    def first_visit(self) -> bool: ...


class VisitEndedView(Protocol):
    @property
    def visit_id(self) -> str: ...


class VisitRefusedView(Protocol):
    @property
    def reason(self) -> RefusalReason: ...


class ReferralMadeView(Protocol):
    @property
    def referral_to(self) -> ReferralKind: ...


class ServiceGivenView(Protocol):
    @property
    def service(self) -> OnSiteService: ...


class ItemsView(Protocol):
    """Supplies dispensed, stock delivered or counted: a count per item."""

    @property
    def items(self) -> Mapping[SupplyItem, int]: ...


class CountOrWeightView(Protocol):
    """Sharps returned, street needles collected."""

    @property
    def count(self) -> int | None: ...
    @property
    def weight_kg(self) -> float | None: ...


class DistrictNamedView(Protocol):
    """A payload that names the district it belongs to (street collections, alerts)."""

    @property
    def district(self) -> str: ...


class StreetNeedlesView(CountOrWeightView, DistrictNamedView, Protocol):
    @property
    def area(self) -> str: ...


class InterventionsView(Protocol):
    @property
    def naloxone_doses(self) -> int: ...
    @property
    def ambulance_called(self) -> bool: ...


class IncidentView(Protocol):
    @property
    def kind(self) -> IncidentKind: ...
    @property
    def life_threatening(self) -> bool: ...
    @property
    def interventions(self) -> InterventionsView: ...
    @property
    def outcome(self) -> Outcome: ...


class DrugCheckView(Protocol):
    @property
    def expected(self) -> Substance: ...
    @property
    def found(self) -> tuple[Substance, ...]: ...


class AlertRaisedView(DistrictNamedView, Protocol):
    @property
    def alert_id(self) -> str: ...
    @property
    def episode(self) -> str: ...
    @property
    def reason(self) -> AlertReason: ...
    @property
    def substance(self) -> Substance | None: ...
    @property
    def facility_id(self) -> str | None: ...
    @property
    def overdoses_in_window(self) -> int | None: ...
    @property
    def window_start(self) -> datetime | None: ...
    @property
    def window_end(self) -> datetime | None: ...
    @property
    def late(self) -> bool: ...


class AlertFollowUpView(DistrictNamedView, Protocol):
    """An alert's acknowledgement, resolution or withdrawal."""

    @property
    def alert_id(self) -> str: ...


class AlertAcknowledgedView(AlertFollowUpView, Protocol):
    @property
    def acknowledged_by(self) -> str: ...
    @property
    def seconds_to_acknowledge(self) -> float: ...


class ReportVoidedView(Protocol):
    @property
    def target_id(self) -> UUID: ...
    @property
    def reason(self) -> VoidReason: ...


if TYPE_CHECKING:  # mypy proves the contract's models satisfy the views (never run)
    from shared.events.envelope import Envelope

    _started: VisitStartedView = cast(p.VisitStarted, None)
    _ended: VisitEndedView = cast(p.VisitEnded, None)
    _refused: VisitRefusedView = cast(p.VisitRefused, None)
    _referral: ReferralMadeView = cast(p.ReferralMade, None)
    _service: ServiceGivenView = cast(p.ServiceGiven, None)
    _dispensed: ItemsView = cast(p.SuppliesDispensed, None)
    _delivered: ItemsView = cast(p.StockDelivered, None)
    _counted: ItemsView = cast(p.StockCounted, None)
    _sharps: CountOrWeightView = cast(p.SharpsReturned, None)
    _street: StreetNeedlesView = cast(p.StreetNeedlesCollected, None)
    _incident: IncidentView = cast(p.IncidentReported, None)
    _check: DrugCheckView = cast(p.DrugCheckResult, None)
    _raised: AlertRaisedView = cast(p.DrugAlertRaised, None)
    _acknowledged: AlertAcknowledgedView = cast(p.DrugAlertAcknowledged, None)
    _resolved: AlertFollowUpView = cast(p.DrugAlertResolved, None)
    _withdrawn: AlertFollowUpView = cast(p.DrugAlertWithdrawn, None)
    _voided: ReportVoidedView = cast(p.ReportVoided, None)
    _envelope: EventView = cast(Envelope, None)


#: Event types whose payload names its district (:class:`DistrictNamedView`): reported per
#: district (a ``/districts/<id>`` source is allowed), not only at a facility.
DISTRICT_LEVEL: Final = frozenset(
    {STREET_NEEDLES_COLLECTED, ALERT_RAISED, ALERT_ACKNOWLEDGED, ALERT_RESOLVED, ALERT_WITHDRAWN}
)
