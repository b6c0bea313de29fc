"""Record mutmut's results per module and write docs/mutation-report.md with a verdict.

Run from the repository root (``tests/mutation/run.sh`` calls it after ``mutmut run``).

Results are kept per module in ``tests/mutation/results.json`` (committed): ``--record`` reads
mutmut's output (``mutants/**/*.meta``) for the modules measured by this run and replaces only
their entries, each with the commit, the module file's git blob id, the date and the duration of
the run that measured it. The other modules keep their last measurement, so
``make mutation MODULE=path.py`` re-measures one file and the report still shows every module.
A module whose file changed since it was measured is flagged *stale* in the report (re-run it).

Score of a module = (killed + timed out) / mutants: *killed* counts mutants a test failed on,
*timed out* those mutmut reported as a timeout (its tests ran longer than the configured multiple
of their clean duration: an endless loop or a blow-up is a failure a user sees). Timeouts are
counted and named apart in the report, so a reader can judge each. *survived*, *no tests* (no
unit test calls the function) and *suspicious* count against the score. A run that left mutants
*not checked* (stopped early) is not recorded. Every surviving or untested mutant must match a
reviewed entry in ``tests/mutation/survivors.toml`` (module, function and the changed lines),
which says why it is equivalent or harmless; entries are matched by content, not by mutmut's
numbering, so they survive renumbering after an edit.

Exit status 1 when a module scores below :data:`MIN_SCORE`, a survivor has no reviewed reason,
a module of the configuration was never measured, or ``--record`` found an incomplete run.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import json
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SURVIVORS = ROOT / "tests" / "mutation" / "survivors.toml"
RESULTS = ROOT / "tests" / "mutation" / "results.json"
REPORT = ROOT / "docs" / "mutation-report.md"
MIN_SCORE = 0.85
STATUSES = ("killed", "timeout", "survived", "no tests", "suspicious")

#: mutmut's exit codes (mutmut.stats.status_by_exit_code, pinned version) folded into our classes.
KILLED_CODES = {1, 3, 37}
TIMEOUT_CODES = {36, -24, 24, 152, 255}
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}
_NAME = re.compile(r"^(?P<module>.+)\.x(?:_|ǁ)(?P<func>.+?)__mutmut_(?P<n>\d+)$")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # e.g. services/projection/suppression.py
    function: str  # e.g. suppress or Class.method
    status: str  # killed | timeout | survived | no tests | suspicious | not checked
    removed: tuple[str, ...]
    added: tuple[str, ...]

    @property
    def number(self) -> int:
        m = _NAME.match(self.name)
        return int(m["n"]) if m else 0

    @property
    def open(self) -> bool:
        """Neither killed nor timed out: it needs a reviewed reason."""
        return self.status not in ("killed", "timeout", "not checked")


@dataclass(frozen=True)
class Measurement:
    """One module's result, as recorded in results.json."""

    module: str
    commit: str  # HEAD when measured (``+dirty``: the worktree had changes)
    blob: str  # git blob id of the module file measured
    measured: str  # UTC date
    seconds: int  # duration of the mutmut run that measured it
    #: "full" (every module), "alone" (MODULE=...), either followed by " + open re-run (N s)"
    #: when the mutants it left open were re-run against newer tests (make mutation-open)
    run: str
    mutmut: str
    counts: dict[str, int]  # per status; no "timeout" key: measured before timeouts were apart
    open: list[Mutant]
    timeouts: list[Mutant] = field(default_factory=list)  # counted as killed

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def score(self) -> float:
        caught = self.counts.get("killed", 0) + self.counts.get("timeout", 0)
        return caught / self.total if self.total else 1.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["open"] = [asdict(m) for m in self.open]
        out["timeouts"] = [asdict(m) for m in self.timeouts]
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Measurement:
        def mutants(ms: list[dict[str, Any]]) -> list[Mutant]:
            return [
                Mutant(
                    m["name"],
                    m["path"],
                    m["function"],
                    m["status"],
                    tuple(m["removed"]),
                    tuple(m["added"]),
                )
                for m in ms
            ]

        return cls(**{**d, "open": mutants(d["open"]), "timeouts": mutants(d.get("timeouts", []))})


def _status(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED_CODES:
        return "killed"
    if code in TIMEOUT_CODES:
        return "timeout"
    if code in SURVIVED_CODES:
        return "survived"
    if code in NO_TESTS_CODES:
        return "no tests"
    return "suspicious"


def _changed_lines(diff: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    removed, added = [], []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    return tuple(removed), tuple(added)


def module_paths(root: Path, modules: list[str] | None = None) -> list[str]:
    """The modules with a mutmut result file under ``root``/mutants (only ``modules``)."""
    out = []
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        path = str(meta.relative_to(root / "mutants"))[: -len(".meta")]
        if Path(path).name != "__init__.py" and (not modules or path in modules):
            out.append(path)
    return out


def load_mutants(root: Path, modules: list[str] | None = None) -> list[Mutant]:
    """Every mutant with a result under ``root``/mutants (only ``modules`` when given)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # only where mutants exist

    out: list[Mutant] = []
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        path = str(meta.relative_to(root / "mutants"))[: -len(".meta")]
        if modules and path not in modules:
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in codes.items():
            m = _NAME.match(name)
            function = m["func"].replace("ǁ", ".") if m else name
            status = _status(code)
            removed: tuple[str, ...] = ()
            added: tuple[str, ...] = ()
            if status not in ("killed", "not checked"):
                removed, added = _changed_lines(get_diff_for_mutant(name, path=Path(path)))
            out.append(Mutant(name, path, function, status, removed, added))
    return out


def blob_id(path: Path) -> str:
    """The file's git blob id (as ``git hash-object`` prints it)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


#: The blob ids of the modules as a run found them (written by ``--snapshot`` before mutmut
#: starts, so an edit during a long run is not mistaken for the code measured).
SNAPSHOT = "mutants/measured-blobs.json"


def snapshot(root: Path) -> dict[str, str]:
    blobs = {m: blob_id(root / m) for m in configured_modules(root)}
    (root / SNAPSHOT).parent.mkdir(exist_ok=True)
    (root / SNAPSHOT).write_text(json.dumps(blobs, indent=1), encoding="utf-8")
    return blobs


def measured_blobs(root: Path) -> dict[str, str]:
    f = root / SNAPSHOT
    return json.loads(f.read_text(encoding="utf-8")) if f.exists() else {}


def measure(
    mutants: list[Mutant],
    root: Path,
    commit: str,
    seconds: int,
    run: str,
    today: str,
    before: dict[str, Measurement] | None = None,
    empty: list[str] | None = None,
) -> tuple[dict[str, Measurement], list[str]]:
    """Measurements of the modules in ``mutants``; incomplete modules are reported, not
    measured. ``run="open"``: the open mutants of the measurement in ``before`` were re-run
    (the others kept their result), so its run and duration are kept, the re-run noted.
    ``empty``: modules the run read that have nothing to mutate (constants only)."""
    by_module: dict[str, list[Mutant]] = {p: [] for p in (empty or [])}
    for m in mutants:
        by_module.setdefault(m.path, []).append(m)
    version = importlib.metadata.version("mutmut")
    blobs = measured_blobs(root)
    out: dict[str, Measurement] = {}
    problems: list[str] = []
    for path, ms in sorted(by_module.items()):
        c = Counter(m.status for m in ms)
        if c["not checked"]:
            problems.append(f"{path}: run incomplete, {c['not checked']} mutants not checked")
            continue
        label, secs = run, seconds
        if run == "open":
            prior = (before or {}).get(path)
            label = f"{prior.run if prior else '?'} + open re-run ({seconds} s)"
            secs = prior.seconds if prior else 0
        out[path] = Measurement(
            module=path,
            commit=commit,
            blob=blobs.get(path) or blob_id(root / path),
            measured=today,
            seconds=secs,
            run=label,
            mutmut=version,
            counts={s: c[s] for s in STATUSES},
            open=sorted((m for m in ms if m.open), key=lambda m: (m.function, m.number)),
            timeouts=sorted(
                (m for m in ms if m.status == "timeout"), key=lambda m: (m.function, m.number)
            ),
        )
    return out, problems


def load_results(path: Path = RESULTS) -> dict[str, Measurement]:
    if not path.exists():
        return {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {m: Measurement.from_json(d) for m, d in doc["modules"].items()}


def save_results(results: dict[str, Measurement], path: Path = RESULTS) -> None:
    doc = {"modules": {m: results[m].to_json() for m in sorted(results)}}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def merge(old: dict[str, Measurement], new: dict[str, Measurement]) -> dict[str, Measurement]:
    """``old`` with the modules of ``new`` replaced (the others keep their measurement)."""
    return {**old, **new}


def load_reasons(path: Path = SURVIVORS) -> dict[tuple[str, ...], str]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    entries: list[dict[str, str]] = doc.get("survivor", [])
    return {entry_key(e): e["reason"] for e in entries}


def entry_key(e: dict[str, str]) -> tuple[str, ...]:
    return (e["module"], e["function"], e["removed"].strip(), e["added"].strip())


def mutant_key(m: Mutant) -> tuple[str, ...]:
    return (m.path, m.function, "\n".join(m.removed), "\n".join(m.added))


def _listed_modules(root: Path) -> list[str]:
    """The files ``[tool.mutmut] only_mutate`` names (globs expanded), relative to ``root``."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    out: set[str] = set()
    for pattern in config["tool"]["mutmut"]["only_mutate"]:
        for f in root.glob(pattern):
            if f.suffix == ".py" and f.name != "__init__.py":
                out.add(str(f.relative_to(root)))
    return sorted(out)


def has_function_bodies(path: Path) -> bool:
    """Whether mutmut has anything to mutate in ``path``: it mutates function bodies only, and
    a stub's body (a docstring and/or ``...``, as a Protocol's members) has nothing to mutate."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_stub(n)
        for n in ast.walk(tree)
    )


def _is_stub(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in function.body)


def configured_modules(root: Path) -> list[str]:
    """The listed modules mutmut can mutate (each must be measured)."""
    return [m for m in _listed_modules(root) if has_function_bodies(root / m)]


def constant_modules(root: Path) -> list[str]:
    """The listed modules without a function body (constants only): mutmut refuses a run on
    them, so they are reported apart, not as never measured."""
    return [m for m in _listed_modules(root) if not has_function_bodies(root / m)]


def stale(results: dict[str, Measurement], root: Path) -> list[str]:
    """Measured modules whose file changed since (or is gone)."""
    return [
        path
        for path, r in sorted(results.items())
        if not (root / path).exists() or blob_id(root / path) != r.blob
    ]


def verdict(
    results: dict[str, Measurement], reasons: dict[tuple[str, ...], str], wanted: list[str]
) -> list[str]:
    """Why the report fails (empty: it passes)."""
    problems = [f"{path}: never measured" for path in wanted if path not in results]
    for path, r in sorted(results.items()):
        problems += [
            f"unreviewed {m.status} mutant {m.name}: {m.removed} -> {m.added}"
            for m in r.open
            if mutant_key(m) not in reasons
        ]
        if r.score < MIN_SCORE:
            problems.append(f"{path}: {r.score:.1%} of mutants killed, below {MIN_SCORE:.0%}")
    return problems


HEADER = """# Mutation report

Generated by `make mutation` (tests/mutation/run.sh; tests/mutation/report.py). Each module's
result is kept in tests/mutation/results.json with the commit and the run that measured it:
`make mutation` measures every module, `make mutation MODULE=path.py` re-measures one and keeps
the others. Each mutant runs against the unit tests (tests/unit; simulator and deployment
checks excluded) that call the mutated function, fastest first, up to the first failure, 2
workers. A mutant whose tests run longer than 5 x (their clean duration + 1 s) is stopped and
reported by mutmut as *timed out*; it counts as caught (an endless loop or a blow-up is a
failure a user sees) and is named below, apart from the killed ones. Measurements recorded
before timeouts were counted apart show `?` there (their *killed* includes them).
Score = (killed + timed out) / mutants; the bar is 85 % per module. mutmut mutates function
bodies only: module-level constants are covered by the reviewer's mutations of issue 19
(tests/mutation/issue_mutations.py), which `make mutation` also checks."""


def render(
    results: dict[str, Measurement],
    reasons: dict[tuple[str, ...], str],
    changed: list[str],
    missing: Sequence[str] = (),
    constants: Sequence[str] = (),
) -> str:
    lines = [
        HEADER,
        "",
        "| module | mutants | killed | timed out | survived | no tests | suspicious | score "
        "| measured on | run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for path, r in sorted(results.items()):
        c = r.counts
        flag = " (**stale**: changed since)" if path in changed else ""
        lines.append(
            f"| {path} | {r.total} | {c['killed']} | {c.get('timeout', '?')} "
            f"| {c['survived']} | {c['no tests']} "
            f"| {c['suspicious']} | {f'{r.score:.1%}' if r.total else '-'} "
            f"| `{r.commit}` {r.measured}{flag} "
            f"| {r.run}, {r.seconds} s, mutmut {r.mutmut} |"
        )
    total = sum(r.total for r in results.values())
    caught = sum(r.counts["killed"] + r.counts.get("timeout", 0) for r in results.values())
    if total:
        lines += [
            "",
            f"All modules: {caught} of {total} mutants killed or timed out ({caught / total:.1%}).",
        ]
    if constants:
        lines += [
            "",
            "Nothing to mutate (constants and stubs only: mutmut mutates function bodies and "
            "refuses a run on a module without one): "
            + ", ".join(f"`{p}`" for p in constants)
            + ".",
        ]
    if missing:
        lines += [
            "",
            "**Not measured** (the bar is not met until they are): "
            + ", ".join(f"`make mutation MODULE={p}`" for p in missing)
            + ".",
        ]
    if changed:
        lines += [
            "",
            "Stale modules changed after they were measured: re-run "
            + ", ".join(f"`make mutation MODULE={p}`" for p in changed)
            + ".",
        ]
    lines += ["", "## Surviving mutants and why they are equivalent or harmless", ""]
    open_ = [m for r in results.values() for m in r.open]
    if not open_:
        lines.append("None.")
    current = None
    for m in sorted(open_, key=lambda m: (m.path, m.function, m.number)):
        if m.path != current:
            current = m.path
            lines += [f"### {m.path}", ""]
        reason = reasons.get(mutant_key(m), "**NOT REVIEWED**")
        change = "; ".join(f"`{r}` → `{a}`" for r, a in _pairs(m.removed, m.added))
        lines.append(f"- `{m.function}` ({m.status}, {m.name.rsplit('.', 1)[-1]}): {change}")
        lines.append(f"  - {reason}")
    timed_out = [m for r in results.values() for m in r.timeouts]
    if timed_out:
        lines += ["", "## Timed out (counted as caught)", ""]
        current = None
        for m in sorted(timed_out, key=lambda m: (m.path, m.function, m.number)):
            if m.path != current:
                current = m.path
                lines += [f"### {m.path}", ""]
            change = "; ".join(f"`{r}` → `{a}`" for r, a in _pairs(m.removed, m.added))
            lines.append(f"- `{m.function}` ({m.name.rsplit('.', 1)[-1]}): {change}")
    return "\n".join(lines) + "\n"


def _pairs(removed: tuple[str, ...], added: tuple[str, ...]) -> list[tuple[str, str]]:
    n = max(len(removed), len(added))
    return [
        (removed[i] if i < len(removed) else "", added[i] if i < len(added) else "")
        for i in range(n)
    ]


def skeleton(m: Mutant) -> str:
    """A survivors.toml entry for ``m`` with the reason left to write."""

    def literal(lines: tuple[str, ...]) -> str:
        return json.dumps("\n".join(lines), ensure_ascii=False)  # a valid TOML basic string

    return (
        f"[[survivor]]  # {m.name} ({m.status})\n"
        f'module = "{m.path}"\nfunction = "{m.function}"\n'
        f'removed = {literal(m.removed)}\nadded = {literal(m.added)}\nreason = ""\n'
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--record", action="store_true", help="record mutants/ in results.json")
    parser.add_argument("--module", action="append", help="only this file (repeatable)")
    parser.add_argument("--commit", default="?", help="the commit measured (with --record)")
    parser.add_argument("--seconds", type=int, default=0, help="the run's duration (--record)")
    parser.add_argument("--run", default="full", choices=("full", "alone", "open"))
    parser.add_argument(
        "--list-open", action="store_true", help="print the names of the mutants left open"
    )
    parser.add_argument(
        "--snapshot", action="store_true", help="note the modules' blob ids before a run"
    )
    parser.add_argument("--out", type=Path, default=REPORT, help="the Markdown report")
    parser.add_argument(
        "--skeleton", action="store_true", help="print survivors.toml entries for unreviewed ones"
    )
    args = parser.parse_args(argv)
    results = load_results()
    problems: list[str] = []
    if args.snapshot:
        snapshot(ROOT)
        return 0
    if args.list_open:
        open_ = [m for m in load_mutants(ROOT, args.module) if m.open]
        blobs = measured_blobs(ROOT)
        changed = sorted({m.path for m in open_ if blobs.get(m.path) != blob_id(ROOT / m.path)})
        for path in changed:  # its mutants/ copy is of the old code: measure it anew
            print(f"skipped, changed since that run: make mutation MODULE={path}", file=sys.stderr)
        print("\n".join(m.name for m in open_ if m.path not in changed))
        return 0
    if args.record:
        mutants = load_mutants(ROOT, args.module)
        if not mutants:
            print("no mutation results under mutants/: run mutmut first", file=sys.stderr)
            return 1
        today = datetime.now(UTC).date().isoformat()
        modules = module_paths(ROOT, args.module)
        if args.run == "open":  # a module changed since was not re-run: it keeps its entry
            blobs = measured_blobs(ROOT)
            modules = [m for m in modules if blobs.get(m) == blob_id(ROOT / m)]
            mutants = [m for m in mutants if m.path in modules]
        new, problems = measure(
            mutants, ROOT, args.commit, args.seconds, args.run, today, results, empty=modules
        )
        results = merge(results, new)
        save_results(results)
    reasons = load_reasons()
    if args.skeleton:
        for r in results.values():
            for m in r.open:
                if mutant_key(m) not in reasons:
                    print(skeleton(m))
        return 0
    changed = stale(results, ROOT)
    missing = [m for m in configured_modules(ROOT) if m not in results]
    text = render(results, reasons, changed, missing, constant_modules(ROOT))
    args.out.write_text(text, encoding="utf-8")
    print(text)
    produced = {mutant_key(m) for r in results.values() for m in r.open}
    for k in reasons:
        if k not in produced and k[0] in results and k[0] not in changed:
            print(f"note: reviewed survivor no longer produced (remove it): {k[:2]} {k[2]!r}")
    for path in changed:
        print(f"note: {path} changed since it was measured: make mutation MODULE={path}")
    problems += verdict(results, reasons, configured_modules(ROOT))
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
