"""Percentiles and throughput of a list of latencies."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks; 0.0 if empty."""
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarise(latencies_s: Sequence[float], seconds: float) -> dict[str, float]:
    """Throughput (per second of ``seconds``) and latency percentiles in milliseconds."""
    s = sorted(latencies_s)
    return {
        "throughput_per_s": round(len(s) / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": round(percentile(s, 0.50) * 1000, 2),
        "p90_ms": round(percentile(s, 0.90) * 1000, 2),
        "p99_ms": round(percentile(s, 0.99) * 1000, 2),
        "max_ms": round((s[-1] if s else 0.0) * 1000, 2),
        "mean_ms": round((sum(s) / len(s) if s else 0.0) * 1000, 2),
    }
