"""What a service itself measured during a benchmark phase: its latency histograms scraped from
``/metrics`` before and after the phase and differenced, so a client-side figure can be split
into time inside the service and time spent waiting to be served (client connection slots,
the server's accept queue, an event loop starved of CPU).

Histogram quantiles are bucket bounds: ``p99_ms_at_most`` 250 means 99 % of the phase's
requests took at most 250 ms inside the service (the buckets of shared/metrics.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: le (seconds) -> cumulative count
Buckets = dict[float, float]


#: A service still working off an overload's backlog answers /metrics late: wait this long.
SCRAPE_TIMEOUT_S = 120.0


async def scrape_buckets(url: str, token: str, metric: str, labels: Mapping[str, str]) -> Buckets:
    """The cumulative buckets of histogram ``metric`` summed over the series matching
    ``labels``, from the service at ``url`` (``token``: a metrics principal's)."""
    async with httpx.AsyncClient(timeout=SCRAPE_TIMEOUT_S) as client:
        answer = await client.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    answer.raise_for_status()
    out: Buckets = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name != f"{metric}_bucket":
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                le = float(sample.labels["le"])
                out[le] = out.get(le, 0.0) + sample.value
    return out


def phase_quantiles(
    before: Buckets, after: Buckets, qs: tuple[float, ...], unit: str = "ms", scale: float = 1000
) -> dict[str, object]:
    """Count and bucket-bound quantiles of the observations made between two scrapes, in
    ``unit`` (the bounds times ``scale``: seconds to ms by default)."""
    diff = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = diff.get(math.inf, 0.0)
    largest = max((le for le in diff if not math.isinf(le)), default=0.0)
    out: dict[str, object] = {"count": int(total)}
    for q in qs:
        bound = next((le for le, n in diff.items() if total and n >= q * total), None)
        key = f"p{round(q * 100)}_{unit}_at_most"
        if bound is None:
            out[key] = None
        elif math.isinf(bound):
            out[key] = f"> {largest * scale:g}"  # beyond the last finite bucket
        else:
            out[key] = round(bound * scale, 3)
    return out
