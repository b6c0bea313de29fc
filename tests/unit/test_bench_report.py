"""The benchmark report flags a fixed-rate ingest run whose load generator was saturated: its
latencies and timeouts are then the client's queueing (one run of httpx.AsyncClient at 200
requests/s used 0.97 cores and timed out half its requests while intake used 0.2 cores;
bench/results/issue18/quiet13), not intake's answer."""

from __future__ import annotations

import copy
import json
from typing import Any

from bench.report import rows
from shared.settings import REPO_ROOT

RUN = REPO_ROOT / "bench" / "results" / "issue18" / "quiet12" / "ingest.json"


def _fixed_rate_rows(client_cores: float | None) -> list[str]:
    ingest: dict[str, Any] = copy.deepcopy(json.loads(RUN.read_text()))
    for client in ("httpx", "raw"):
        ingest["results"][f"http_fixed_rate_{client}"]["client_cores"] = client_cores
    return [r[2] for r in rows({"ingest": ingest}) if r[1].startswith("fixed rate")]


def test_a_saturated_load_generator_is_named_in_the_fixed_rate_rows() -> None:
    results = _fixed_rate_rows(0.97)

    assert len(results) == 2
    assert all("load generator saturated** (client 0.97 cores)" in r for r in results)


def test_a_load_generator_with_headroom_is_not_flagged() -> None:
    assert not any("saturated" in r for r in _fixed_rate_rows(0.35))
    assert not any("saturated" in r for r in _fixed_rate_rows(None))
