"""Keeps issue 18's write-path benchmarks working (real Kafka + PostgreSQL, tiny sizes):
``python -m bench.transport`` compares every transport on the same batches and finds the tables
identical; ``python -m bench.explain_batch`` writes the plans of a batch's claim and visit
upsert. Figures are not asserted (they depend on the machine). ``python -m bench.pg_statements``
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


def test_explain_batch_writes_the_plans_of_the_claim_and_the_visit_upsert(tmp_path: Path) -> None:
    proc = _run(
        "bench.explain_batch",
        *("--batches", "2", "--batch", "1000", "--repeat", "2", "--work-mem", "4MB,32MB"),
        *("--out", str(tmp_path)),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads((tmp_path / "explain.json").read_text())
    assert (doc["batches"], doc["batch"]) == (2, 1000)
    for name, table in (("claim", "projection_events"), ("visits", "visits")):
        assert set(doc[name]) == {"4MB", "32MB"}  # each setting, run twice
        for work_mem, figures in doc[name].items():
            assert len(figures["execution_ms"]) == 2
            assert figures["execution_ms_median"] > 0
            # the plan of the real statement, run on the batch (rows inserted, rolled back)
            plan = (tmp_path / f"{name}-plan-{work_mem}.txt").read_text()
            assert f"Insert on {table}" in plan
    # the batch's additive writes, each explained on its own, named by the table it writes
    assert "district_daily" in doc["additive"]
    for work_mem in ("4MB", "32MB"):
        plan = (tmp_path / f"additive_district_daily-plan-{work_mem}.txt").read_text()
        assert "Insert on district_daily" in plan
