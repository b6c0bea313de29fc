"""The event catalogue: every CloudEvents ``type``, its stream, payload model and schema version.

Contracts know no plumbing: this module imports no I/O library and nothing from ``shared.kafka``;
the topic names derive from :mod:`shared.events.streams` (see ``shared/kafka/topics.py``).

Adding a version 2 of an event: bump ``version`` here, change the model, and register an upcaster
in :data:`UPCASTERS` that turns a version-1 ``data`` dict into a version-2 one. Consumers always
see the current version.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.events import payloads as p
from shared.events import streams as topics


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event type: its stream (see :mod:`shared.events.streams`), payload model, version."""

    type: str
    topic: str
    model: builtins.type[p.Payload]
    version: int = 1


CATALOGUE: dict[str, EventSpec] = {
    spec.type: spec
    for spec in (
        EventSpec("dk.dcr.visit.started", topics.VISITS, p.VisitStarted, version=2),
        EventSpec("dk.dcr.visit.ended", topics.VISITS, p.VisitEnded),
        EventSpec("dk.dcr.visit.refused", topics.VISITS, p.VisitRefused, version=2),
        EventSpec("dk.dcr.referral.made", topics.VISITS, p.ReferralMade),
        EventSpec("dk.dcr.service.given", topics.VISITS, p.ServiceGiven),
        EventSpec("dk.dcr.supplies.dispensed", topics.SUPPLIES, p.SuppliesDispensed),
        EventSpec("dk.dcr.sharps.returned", topics.SUPPLIES, p.SharpsReturned),
        EventSpec("dk.dcr.stock.delivered", topics.SUPPLIES, p.StockDelivered),
        EventSpec("dk.dcr.stock.counted", topics.SUPPLIES, p.StockCounted),
        EventSpec("dk.dcr.street_needles.collected", topics.SUPPLIES, p.StreetNeedlesCollected),
        EventSpec("dk.dcr.incident.reported", topics.INCIDENTS, p.IncidentReported),
        EventSpec("dk.dcr.drugcheck.result", topics.INCIDENTS, p.DrugCheckResult),
        EventSpec("dk.dcr.alert.raised", topics.ALERTS, p.DrugAlertRaised),
        EventSpec("dk.dcr.alert.acknowledged", topics.ALERTS, p.DrugAlertAcknowledged),
        EventSpec("dk.dcr.alert.resolved", topics.ALERTS, p.DrugAlertResolved),
        EventSpec("dk.dcr.alert.withdrawn", topics.ALERTS, p.DrugAlertWithdrawn),
        EventSpec("dk.dcr.report.voided", topics.CORRECTIONS, p.ReportVoided),
    )
}

_BY_MODEL: dict[type[p.Payload], EventSpec] = {s.model: s for s in CATALOGUE.values()}

#: (type, from_version) -> function turning that version's data into version ``from_version + 1``.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _add_legacy_key_id(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2 of the visit events: pseudonyms made before key ids existed are key ``k0``."""
    if data.get("client_pseudonym") is None:
        return data
    return {**data, "pseudonym_key": p.LEGACY_KEY_ID}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("dk.dcr.visit.started", 1): _add_legacy_key_id,
    ("dk.dcr.visit.refused", 1): _add_legacy_key_id,
}


def spec_for(model: type[p.Payload]) -> EventSpec:
    return _BY_MODEL[model]


def upcast(event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    """Bring ``data`` written at ``version`` up to the catalogue's current version.

    Raises LookupError when a step is missing (the record goes to the dead-letter topic).
    """
    current = CATALOGUE[event_type].version
    if version > current:
        raise LookupError(f"schema version {version} of {event_type} is newer than {current}")
    while version < current:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise LookupError(f"no upcaster for {event_type} v{version}")
        data = step(data)
        version += 1
    return data
