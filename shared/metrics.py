"""Prometheus metrics shared by every service (one ``dcr_`` prefix, base units, ``_total``).

Labels are bounded: service, route template, method, status class, event type, district,
facility, kind. Never a client pseudonym, a visit id or any other per-person value.
Metrics are module-level singletons so several apps in one process (tests) share them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "dcr_http_requests", "HTTP requests answered", ["service", "route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "dcr_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_EVENTS = Counter(
    "dcr_ingest_events",
    "Events taken in by the ingest APIs, by outcome",
    ["service", "type", "outcome"],
)
AUTH_FAILURES = Counter(
    "dcr_auth_failures", "Refused authentication or authorisation", ["service", "reason"]
)
PUBLISH_LATENCY = Histogram(
    "dcr_kafka_publish_duration_seconds",
    "Time until Kafka acknowledged an event (acks=all)",
    ["service", "topic"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PUBLISH_ERRORS = Counter(
    "dcr_kafka_publish_errors", "Events Kafka did not acknowledge", ["service", "topic"]
)
DEADLETTERED = Counter(
    "dcr_deadlettered_records", "Records sent to the dead-letter topic", ["service", "topic"]
)
