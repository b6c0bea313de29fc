"""Checks on a Prometheus text exposition: promtool's linter and bounded label names/values."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

PROMTOOL = Path("/usr/bin/promtool")

#: Every label name any of our services may use: bounded by the city, the vocabularies, the topic
#: catalogue or the route table (and the client library's / FastStream's own bounded labels).
ALLOWED_LABELS = frozenset(
    {
        # ours
        "district",
        "facility",
        "kind",
        "item",
        "outcome",
        "topic",
        "partition",
        "service",
        "route",
        "method",
        "status",
        "type",
        "reason",
        # drug alerts (issue 11): lifecycle / delivery-log states, notification channels
        "state",
        "channel",
        # histograms / summaries
        "le",
        "quantile",
        # FastStream's KafkaPrometheusMiddleware
        "app_name",
        "broker",
        "destination",
        "handler",
        "exception_type",
        # prometheus_client's platform/GC collectors
        "implementation",
        "major",
        "minor",
        "patchlevel",
        "version",
        "generation",
    }
)
#: Metric name prefixes: ours, and prometheus_client's default process/platform collectors.
ALLOWED_PREFIXES = ("dcr_", "process_", "python_")
#: Values that look like a pseudonym (64 hex), a uuid4 hex id (visit/incident ids) or a uuid.
_ID_LIKE = re.compile(r"^(?:t?[0-9a-f]{32}|[0-9a-f]{64}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f-]{24,})$")


def promtool_check(text: str) -> str:
    """Run ``promtool check metrics``; return its findings ('' when clean). Fails on rc != 0."""
    proc = subprocess.run(  # the exposition goes on stdin
        [str(PROMTOOL), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"promtool check metrics failed:\n{findings}"
    return findings


def label_problems(text: str, forbidden_values: frozenset[str] = frozenset()) -> list[str]:
    """Names outside our prefixes, label names outside ALLOWED_LABELS, id-like label values."""
    problems: list[str] = []
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(ALLOWED_PREFIXES):
            problems.append(f"metric {family.name}: not a dcr_ metric")
        for sample in family.samples:
            for name, value in sample.labels.items():
                if name not in ALLOWED_LABELS:
                    problems.append(f"{sample.name}: label {name!r} is not a bounded label")
                if _ID_LIKE.match(value) or value in forbidden_values:
                    problems.append(f"{sample.name}: label {name}={value!r} looks like an id")
    return sorted(set(problems))
