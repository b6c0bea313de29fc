"""The benchmark report flags a fixed-rate ingest run whose load generator was saturated: its
latencies and timeouts are then the client's queueing (one run of httpx.AsyncClient at 200
requests/s used 0.97 cores and timed out half its requests while intake used 0.2 cores;
bench/results/issue18/quiet13), not intake's answer. A freshness row gives the projection's
own figures of the run (its batches and their transactions), where the run recorded them.
Each run is judged against its target (issue 18's rates for the projection), from its figures."""

from __future__ import annotations

import copy
import json
from typing import Any

from bench.report import render, rows, verdict
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


QUIET12 = REPO_ROOT / "bench" / "results" / "issue18" / "quiet12"


def _result(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((QUIET12 / f"{name}.json").read_text())
    return loaded


def test_the_catch_up_is_judged_against_fifty_thousand_events_per_second() -> None:
    fast, slow = _result("catchup-02"), _result("catchup")  # 54,441 and 44,028 events/s

    assert verdict("catchup", fast) == "**met** (54,441 events/s)"
    assert verdict("catchup", slow) == "**not met** (44,028 events/s)"


def test_scale_is_judged_on_two_instances_against_seventy_thousand() -> None:
    scale = _result("scale")
    assert verdict("scale", scale) == "**not met** (44,091 events/s)"

    two = next(run for run in scale["results"]["runs"] if run["instances"] == 2)
    two["events_per_s"] = 70_000.0
    assert verdict("scale", scale) == "**met** (70,000 events/s)"

    scale["results"]["runs"] = [r for r in scale["results"]["runs"] if r["instances"] != 2]
    assert verdict("scale", scale) == ""  # nothing to judge


def test_freshness_is_judged_on_its_worst_rate() -> None:
    freshness = _result("freshness")
    assert verdict("freshness", freshness).startswith("**met** (worst p99 ")

    freshness["results"]["runs"][0]["freshness"]["p99_ms"] = 500.0
    assert verdict("freshness", freshness) == "**not met** (worst p99 500.0 ms)"


def test_drug_alerts_miss_their_target_when_one_goes_missing() -> None:
    alerts = _result("alerts")
    assert verdict("alerts", alerts).startswith("**met** (worst p99 ")

    alerts["results"]["email"]["missing"] = 1
    assert verdict("alerts", alerts).startswith("**not met** (")
    assert verdict("alerts", alerts).endswith("missing 1)")


def test_ingest_is_judged_on_the_minimal_clients_fixed_rate_run() -> None:
    ingest = _result("ingest")
    ingest["results"]["http_fixed_rate_raw"]["p99_ms"] = 49.9
    ingest["results"]["http_fixed_rate_httpx"]["p99_ms"] = 5000.0  # a saturated client
    assert verdict("ingest", ingest) == "**met** (p99 49.9 ms)"

    ingest["results"]["http_fixed_rate_raw"]["p99_ms"] = 50.0
    assert verdict("ingest", ingest) == "**not met** (p99 50.0 ms)"


def test_the_report_states_each_runs_target_and_verdict() -> None:
    results = {name: _result(name) for name in ("catchup", "scale", "freshness")}

    report = render(results)

    assert "target: one instance >= 50,000 events/s (issue 18): **not met** (44,028" in report
    assert "target: two instances >= 70,000 events/s (issue 18): **not met** (44,091" in report
    assert "target: p99 < 500 ms at every rate: **met** (worst p99 " in report
