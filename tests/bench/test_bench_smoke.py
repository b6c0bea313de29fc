"""Keeps ``make bench`` working: every benchmark once with tiny sizes (real Kafka + PostgreSQL),
checking that the JSON results have the expected fields and sane values, and that the report is
written. The figures themselves are not asserted (they depend on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.settings import REPO_ROOT

pytestmark = pytest.mark.integration

TINY = [
    "--events", "3000",
    "--days", "2",
    "--facilities", "12",
    "--scale-instances", "1,2",
    "--ingest-requests", "150",
    "--concurrency", "8",
    "--rate", "40",
    "--rate-seconds", "1.5",
    "--freshness-rates", "city,40",
    "--freshness-seconds", "2",
    "--freshness-warmup", "0.5",
    "--alert-clusters", "6",
    "--alert-rate", "5",
]  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--results-dir", str(out), *TINY],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| benchmark | measure | result |" in proc.stdout  # the report is printed
    return out


def _load(results: Path, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((results / f"{name}.json").read_text())
    assert doc["benchmark"] == name
    assert doc["command"].startswith("python -m bench")
    assert doc["duration_s"] > 0
    m = doc["machine"]
    assert m["cores"] > 0 and m["memory_gib"] > 0 and m["cpu_model"]
    assert {"load1", "load5", "load15"} <= set(doc["load_before"]) & set(doc["load_after"])
    r: dict[str, Any] = doc["results"]
    return r


def _latencies_sane(x: dict[str, Any]) -> None:
    assert x["throughput_per_s"] > 0
    assert 0 < x["p50_ms"] <= x["p99_ms"] <= x["max_ms"]


def test_catchup(results: Path) -> None:
    r = _load(results, "catchup")
    assert r["preload"]["records"] == 3000
    assert r["raw_consumer"]["records"] == 3000 and r["raw_consumer"]["events_per_s"] > 0
    p = r["projection"]
    assert p["records"] == 3000 and p["events_per_s"] > 0 and p["events_per_s_from_start"] > 0
    assert p["verified"] and p["dedup_rows"] == p["expected_unique_events"] > 0
    assert p["projection_cpu_us_per_event"] >= 0 and p["postgres_cpu_us_per_event"] >= 0
    assert r["ratio"] > 0


def test_ingest(results: Path) -> None:
    r = _load(results, "ingest")
    for client in ("httpx", "raw"):
        closed = r[f"http_closed_loop_{client}"]
        assert closed["requests"] == 150 and closed["errors"] == 0
        _latencies_sane(closed)
        assert closed["service_cores"] > 0
        fixed = r[f"http_fixed_rate_{client}"]
        assert fixed["requests"] == 60 and fixed["errors"] == 0
        _latencies_sane(fixed)
    _latencies_sane(r["http_closed_loop_raw_without_idempotency_key"])
    _latencies_sane(r["raw_producer_closed_loop"])
    _latencies_sane(r["raw_producer_fixed_rate"])
    assert r["ratio_httpx"] > 0 and r["ratio_raw_client"] > 0
    assert r["params"]["record_value_bytes"] > 0


def test_freshness(results: Path) -> None:
    r = _load(results, "freshness")
    assert r["params"]["city_scale_rate_per_s"] > 0
    assert [run["rate_per_s"] for run in r["runs"]] == [r["params"]["city_scale_rate_per_s"], 40]
    for run in r["runs"]:
        assert run["measured_events"] > 0 and run["errors"] == 0 and run["never_visible"] == 0
        assert 0 < run["freshness"]["p50_ms"] <= run["freshness"]["p99_ms"]
        _latencies_sane(run["http"])


def test_scale(results: Path) -> None:
    r = _load(results, "scale")
    assert [run["instances"] for run in r["runs"]] == [1, 2]
    for run in r["runs"]:
        assert run["records"] == 3000 and run["events_per_s"] > 0 and run["verified"]
    assert r["runs"][0]["speedup"] == 1.0


def test_alerts(results: Path) -> None:
    r = _load(results, "alerts")
    assert r["params"]["clusters"] == 6
    for channel in ("webhook", "email"):
        assert r[channel]["delivered"] == 6 and r[channel]["missing"] == 0
        _latencies_sane(r[channel])


def test_report(results: Path) -> None:
    report = (results / "REPORT.md").read_text()
    for row in (
        "| 1 catch-up |",
        "| 2 ingest |",
        "| 3 freshness |",
        "| 4 scale |",
        "| 5 drug alerts |",
    ):
        assert row in report
    assert "cores" in report and "load" in report


def test_profile_catchup_names_where_the_time_goes(tmp_path: Path) -> None:
    """``python -m bench.profile_catchup`` replays a tiny log twice (plain, then profiled) and
    names the hot path's functions with their cost per event; ``--timeline`` adds the batches'
    stages and the CPU per second; the garbage collector's share is reported under the
    threshold given by ``--gc-young``."""
    out = tmp_path / "profile.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.profile_catchup",
            "--events",
            "2000",
            "--days",
            "1",
            "--facilities",
            "12",
            "--runs",
            "2",
            "--top",
            "60",
            "--timeline",
            "--gc-young",
            "700",
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert doc["events"] == 2000
    [plain] = doc["unprofiled"]
    assert plain["cpu_us_per_event"] > 0 and plain["events_per_s"] > 0
    assert plain["timeline"]["prepare_batches"] >= 1 and plain["timeline"]["apply_batches"] >= 1
    # the collector's share, under the threshold asked for (700: CPython's default, so a
    # replay of 2,000 events collects its youngest generation at least once)
    collected = plain["gc"]
    assert collected["thresholds"][0] == 700
    assert collected["collections"][0] >= 1 and collected["seconds"] >= 0
    assert collected["us_per_event"] >= 0
    cpu = plain["cpu_per_second"]  # a tiny replay may end before the first whole second
    assert cpu["columns"] == ["seconds", "projection_cores", "postgres_cores", "projection_rss_mb"]
    for seconds, projection, postgres, rss in cpu["samples"]:
        assert seconds > 0 and projection >= 0 and postgres >= 0 and rss > 0
    cumulative = {row["function"]: row for row in doc["profiled_top_cumulative"]}
    decode = [f for f in cumulative if "domain.py" in f and "(decode_batch)" in f]
    assert decode and cumulative[decode[0]]["calls"] >= 1
    assert cumulative[decode[0]]["cum_us_per_event"] > 0
    assert out.with_suffix(".pstats").exists()


def test_prepare_times_the_projectors_python_work_alone(tmp_path: Path) -> None:
    """``python -m bench.prepare`` prepares a small log in batches as the projector does, with
    no broker or database, and reports its CPU time per record, best and median of the
    passes."""
    out = tmp_path / "prepare.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.prepare", "--events", "3000", "--batch", "1000",
         "--repeat", "3", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert doc["records"] == 3000 and doc["batch"] == 1000
    assert len(doc["passes_us"]) == 3 and min(doc["passes_us"]) == doc["best_us_per_record"]
    assert 0 < doc["best_us_per_record"] <= doc["median_us_per_record"]
    assert doc["machine"]["cores"] > 0 and "load1" in doc["load_before"]
