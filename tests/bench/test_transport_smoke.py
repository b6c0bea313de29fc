"""Keeps issue 18's write-path benchmarks working (real Kafka + PostgreSQL, tiny sizes):
``python -m bench.transport`` compares every transport on the same batches and finds the tables
identical. Figures are not asserted (they depend on the machine). ``python -m bench.pg_statements``
is not run here: it reads ``pg_stat_statements``, which the project's PostgreSQL does not load
(see that module's docstring)."""

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
