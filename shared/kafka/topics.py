"""The topic catalogue. Topics are created explicitly (never auto-created) by ``dcr-topics``."""

from typing import Final

VISITS: Final = "dcr.visits"
SUPPLIES: Final = "dcr.supplies"
INCIDENTS: Final = "dcr.incidents"
ALERTS: Final = "dcr.alerts"
DEADLETTER: Final = "dcr.deadletter"
#: Voids of earlier reports (issue 13).
CORRECTIONS: Final = "dcr.corrections"

#: Topics that carry domain events (what the projection consumes).
EVENT_TOPICS: Final = (VISITS, SUPPLIES, INCIDENTS, ALERTS, CORRECTIONS)
ALL_TOPICS: Final = (*EVENT_TOPICS, DEADLETTER)
