"""The topic catalogue. Topics are created explicitly (never auto-created) by ``dcr-topics``.

The domain topics derive from the contracts (:mod:`shared.events.streams`, one topic per stream);
the dead-letter topic is plumbing only and is declared here.
"""

from typing import Final

from shared.events.catalogue import CATALOGUE
from shared.events.streams import ALERTS, CORRECTIONS, INCIDENTS, SUPPLIES, VISITS

DEADLETTER: Final = "dcr.deadletter"

#: Topics that carry domain events (what the projection consumes): every stream of the catalogue,
#: in the order of its first event type.
EVENT_TOPICS: Final = tuple(dict.fromkeys(spec.topic for spec in CATALOGUE.values()))
ALL_TOPICS: Final = (*EVENT_TOPICS, DEADLETTER)

__all__ = [
    "ALERTS",
    "ALL_TOPICS",
    "CORRECTIONS",
    "DEADLETTER",
    "EVENT_TOPICS",
    "INCIDENTS",
    "SUPPLIES",
    "VISITS",
]
