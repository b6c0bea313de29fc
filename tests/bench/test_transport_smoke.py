"""Keeps issue 18's write-path benchmarks working (real Kafka + PostgreSQL, tiny sizes):
``python -m bench.transport`` compares every transport on the same batches and finds the tables
identical, and ``python -m bench.pg_statements`` attributes a run's statements to the run's own
database. Figures are not asserted (they depend on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.transport import VARIANTS
from shared.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_transport_compares_every_variant_on_identical_tables(tmp_path: Path) -> None:
    out = tmp_path / "transport.json"
    proc = _run(
        "bench.transport", "--events", "3000", "--batch", "1000", "--rounds", "1", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert (doc["events"], doc["batch"]) == (3000, 1000)
    for statement, variants in VARIANTS.items():
        assert set(doc[statement]) == set(variants)
        rows = {v["rows_per_run"] for v in doc[statement].values()}
        assert len(rows) == 1 and rows.pop() > 0  # every variant wrote the same rows
        for figures in doc[statement].values():
            assert figures["python_cpu_us_per_row"] > 0
            assert figures["wall_us_per_row"] >= figures["python_cpu_us_per_row"] * 0.5


def test_pg_statements_finds_the_runs_claim(tmp_path: Path) -> None:
    out = tmp_path / "pg.json"
    proc = _run(
        "bench.pg_statements",
        "--events",
        "2000",
        "--out",
        str(out),
        "--",
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
        "1",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert doc["rc"] == 0
    claims = [s for s in doc["statements"] if "INSERT INTO projection_events" in s["query"]]
    assert claims and claims[0]["calls"] >= 1 and claims[0]["rows"] >= 1
    assert doc["total_us_per_event"] > 0
