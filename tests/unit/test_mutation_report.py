"""The mutation report (tests/mutation/report.py) keeps one measurement per module: re-measuring
one module replaces only its entry, a module changed since its measurement is flagged, and the
verdict fails on a low score, an unreviewed survivor or a module never measured."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.mutation.fastest_first import durations, fastest_first
from tests.mutation.report import (
    Mutant,
    _status,
    blob_id,
    configured_modules,
    constant_modules,
    load_results,
    measure,
    merge,
    mutant_key,
    render,
    save_results,
    stale,
    verdict,
)

A, B = "shared/a.py", "shared/b.py"


def _mutants(path: str, killed: int, survived: int = 0, unchecked: int = 0) -> list[Mutant]:
    out = [Mutant(f"shared.a.x_f__mutmut_{i}", path, "f", "killed", (), ()) for i in range(killed)]
    out += [
        Mutant(f"shared.a.x_f__mutmut_{killed + i}", path, "f", "survived", (f"x = {i}",), ("",))
        for i in range(survived)
    ]
    out += [Mutant(f"m{i}", path, "f", "not checked", (), ()) for i in range(unchecked)]
    return out


def _tree(tmp_path: Path) -> Path:
    for p in (A, B):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_text(f"# {p}\n")
    return tmp_path


def test_re_measuring_one_module_keeps_the_others(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    full, problems = measure(
        _mutants(A, 9, 1) + _mutants(B, 20), root, "c1", 1500, "full", "2026-11-29"
    )
    assert problems == [] and set(full) == {A, B}
    results = tmp_path / "results.json"
    save_results(full, results)
    alone, _ = measure(_mutants(B, 18, 2), root, "c2", 60, "alone", "2026-11-30")
    save_results(merge(load_results(results), alone), results)

    merged = load_results(results)
    assert merged[A] == full[A]  # untouched, survivors and all
    assert merged[B].commit == "c2" and merged[B].run == "alone" and merged[B].seconds == 60
    assert merged[B].counts["survived"] == 2 and len(merged[B].open) == 2
    assert merged[A].score == 0.9


def test_an_incomplete_run_is_not_recorded(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    done, problems = measure(_mutants(A, 5, unchecked=3), root, "c", 1, "alone", "d")
    assert done == {} and problems == [f"{A}: run incomplete, 3 mutants not checked"]


def test_verdict_wants_the_bar_reviewed_survivors_and_every_module(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    results, _ = measure(_mutants(A, 17, 3), root, "c", 1, "full", "d")  # 85 %
    survivors = results[A].open
    reviewed = {mutant_key(m): "equivalent" for m in survivors}
    assert verdict(results, reviewed, [A]) == []
    unreviewed = verdict(results, dict(list(reviewed.items())[1:]), [A])
    assert len(unreviewed) == 1 and survivors[0].name in unreviewed[0]
    assert verdict(results, reviewed, [A, B]) == [f"{B}: never measured"]
    low, _ = measure(_mutants(A, 16, 4), root, "c", 1, "full", "d")  # 80 %
    reasons = {mutant_key(m): "r" for m in low[A].open}
    assert verdict(low, reasons, [A]) == [f"{A}: 80.0% of mutants killed, below 85%"]


def test_a_module_changed_since_its_measurement_is_flagged(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    results, _ = measure(_mutants(A, 4) + _mutants(B, 4), root, "abc", 7, "full", "2026-11-29")
    assert stale(results, root) == []
    (root / B).write_text("# edited\n")
    assert stale(results, root) == [B]
    text = render(results, {}, stale(results, root))
    row = next(line for line in text.splitlines() if line.startswith(f"| {B} "))
    assert "stale" in row and "`abc` 2026-11-29" in row and "full, 7 s" in row
    assert f"make mutation MODULE={B}" in text


def test_blob_id_is_gits(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("print('hello')\n")
    git = subprocess.run(
        ["git", "hash-object", str(f)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert blob_id(f) == git


def test_a_module_with_nothing_to_mutate_counts_as_measured(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    done, problems = measure(_mutants(A, 3), root, "c", 1, "full", "d", empty=[A, B])
    assert problems == [] and done[B].total == 0
    assert verdict(done, {}, [A, B]) == []
    assert f"| {B} | 0 | 0 | 0 | 0 | 0 | 0 | - |" in render(done, {}, [])


def test_timeouts_count_as_caught_and_are_named_apart(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    slow = Mutant("shared.a.x_f__mutmut_99", A, "f", "timeout", ("while x:",), ("while True:",))
    results, problems = measure([*_mutants(A, 16, 3), slow], root, "c", 1, "alone", "d")
    assert problems == []
    r = results[A]
    assert r.counts["killed"] == 16 and r.counts["timeout"] == 1 and r.total == 20
    assert r.score == 0.85 and r.timeouts == [slow] and slow not in r.open
    assert verdict(results, {mutant_key(m): "r" for m in r.open}, [A]) == []
    text = render(results, {}, [])
    assert f"| {A} | 20 | 16 | 1 | 3 | 0 | 0 | 85.0% |" in text
    timed_out = text.split("## Timed out (counted as caught)", 1)[1]
    assert "mutmut_99" in timed_out and "`while x:` → `while True:`" in timed_out
    assert "mutmut_16" not in timed_out  # a survivor is not listed as timed out
    save_results(results, tmp_path / "results.json")
    assert load_results(tmp_path / "results.json") == results


def test_a_measurement_from_before_timeouts_were_apart_shows_them_unknown(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    results, _ = measure(_mutants(A, 4), root, "c", 1, "full", "d")
    old = {
        A: replace(
            results[A], counts={k: v for k, v in results[A].counts.items() if k != "timeout"}
        )
    }
    assert old[A].score == 1.0
    assert f"| {A} | 4 | 4 | ? | 0 | 0 | 0 | 100.0% |" in render(old, {}, [])


@pytest.mark.parametrize(
    ("code", "status"),
    [(1, "killed"), (37, "killed"), (36, "timeout"), (-24, "timeout"), (152, "timeout"),
     (0, "survived"), (33, "no tests"), (None, "not checked"), (-11, "suspicious")],
)  # fmt: skip
def test_mutmut_exit_codes_fold_into_statuses(code: int | None, status: str) -> None:
    assert _status(code) == status


@dataclass
class _Item:
    nodeid: str


def test_a_mutants_tests_run_fastest_first_and_unmeasured_ones_last() -> None:
    items = [_Item("slow"), _Item("new"), _Item("fast"), _Item("mid"), _Item("newer")]
    fastest_first(items, {"slow": 7.1, "fast": 0.01, "mid": 0.9})  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == ["fast", "mid", "slow", "new", "newer"]


def test_the_order_comes_from_mutmuts_stats_and_is_pytests_own_before_them(tmp_path: Path) -> None:
    stats = tmp_path / "mutmut-stats.json"
    assert durations(stats) == {}
    stats.write_text(json.dumps({"duration_by_test": {"t::a": 2.5}, "stats_time": 3}))
    assert durations(stats) == {"t::a": 2.5}


def test_a_module_of_constants_only_is_reported_apart_not_as_never_measured(
    tmp_path: Path,
) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "names.py").write_text('A = "a"\nB: dict[str, int] = {"b": 1}\n')
    (tmp_path / "shared" / "code.py").write_text("def f() -> int:\n    return 1\n")
    (tmp_path / "shared" / "stubs.py").write_text(
        "class P(Protocol):\n    @property\n    def a(self) -> int: ...\n"
        '    def b(self) -> int:\n        """Doc."""\n        ...\n'
    )
    (tmp_path / "pyproject.toml").write_text('[tool.mutmut]\nonly_mutate = ["shared/*"]\n')
    assert configured_modules(tmp_path) == ["shared/code.py"]
    assert constant_modules(tmp_path) == ["shared/names.py", "shared/stubs.py"]
    assert verdict({}, {}, configured_modules(tmp_path)) == ["shared/code.py: never measured"]
    text = render({}, {}, [], ["shared/code.py"], ["shared/names.py"])
    assert "Nothing to mutate" in text and "`shared/names.py`" in text
