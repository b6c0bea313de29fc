"""The benchmark report flags a fixed-rate ingest run whose load generator was saturated: its
latencies and timeouts are then the client's queueing (one run of httpx.AsyncClient at 200
requests/s used 0.97 cores and timed out half its requests while intake used 0.2 cores;
bench/results/issue18/quiet13), not intake's answer. A freshness row gives the projection's
own figures of the run (its batches and their transactions), where the run recorded them."""

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


FRESHNESS = REPO_ROOT / "bench" / "results" / "issue18" / "quiet12" / "freshness.json"


def _freshness_rows(**extra: Any) -> list[str]:
    freshness: dict[str, Any] = copy.deepcopy(json.loads(FRESHNESS.read_text()))
    for run in freshness["results"]["runs"]:
        run.update(extra)
    return [r[3] for r in rows({"freshness": freshness}) if r[0] == "3 freshness"]


def test_a_freshness_row_says_what_the_projections_batches_were() -> None:
    """Freshness at a rate is a number of batches, each waiting for the ones before it: the
    row gives what the projection measured itself (its batch size and transaction time)."""
    results = _freshness_rows(
        projection_batch_records={"count": 3963, "p50_records_at_most": 5.0},
        projection_batch_apply={"count": 3963, "p50_ms_at_most": 25.0},
    )

    assert len(results) == 2
    assert all(
        r.endswith("projection: 3,963 batches, p50 <= 5 records, transaction p50 <= 25 ms")
        for r in results
    )


def test_a_freshness_run_without_the_projections_figures_is_reported_as_before() -> None:
    assert not any("projection:" in r for r in _freshness_rows())
