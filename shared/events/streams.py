"""The event streams: the logical name of each ordered stream of domain events.

A stream is part of the contract (the AsyncAPI document names it, every event type belongs to
exactly one); how a stream is carried (a Kafka topic, its prefix, partitions) is plumbing and lives
in :mod:`shared.kafka.topics`, which derives its topic names from these.
"""

from typing import Final

VISITS: Final = "dcr.visits"
SUPPLIES: Final = "dcr.supplies"
INCIDENTS: Final = "dcr.incidents"
ALERTS: Final = "dcr.alerts"
#: Voids of earlier reports (issue 13).
CORRECTIONS: Final = "dcr.corrections"
