"""Turn mutmut's results (``mutants/**/*.meta``) into docs/mutation-report.md and a verdict.

Run from the repository root after ``mutmut run`` (``tests/mutation/run.sh`` does both).

Score of a module = killed / checked mutants, where *killed* counts mutants a test failed on and
mutants that timed out (an endless loop is a failure a user sees); *survived*, *no tests* (no unit
test calls the function) and *suspicious* count against the score. Mutants *not checked* (a run
stopped early) are left out of the score and make the verdict fail: the run is incomplete.
Every surviving or untested mutant must match a reviewed entry in
``tests/mutation/survivors.toml`` (module, function and the changed lines), which says why it
is equivalent or harmless; entries are matched by content, not by mutmut's numbering, so they
survive renumbering after an edit.

Exit status 1 when a module scores below :data:`MIN_SCORE` or a survivor has no reviewed reason.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant

ROOT = Path(__file__).resolve().parents[2]
SURVIVORS = ROOT / "tests" / "mutation" / "survivors.toml"
MIN_SCORE = 0.85

#: mutmut's exit codes (mutmut.stats.status_by_exit_code, pinned version) folded into our classes.
KILLED_CODES = {1, 3, 36, -24, 24, 152, 255, 37}
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}
_NAME = re.compile(r"^(?P<module>.+)\.x(?:_|ǁ)(?P<func>.+?)__mutmut_(?P<n>\d+)$")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # e.g. services/projection/suppression.py
    function: str  # e.g. suppress or Class.method
    status: str  # killed | survived | no tests | suspicious | not checked
    removed: tuple[str, ...]
    added: tuple[str, ...]

    @property
    def number(self) -> int:
        m = _NAME.match(self.name)
        return int(m["n"]) if m else 0


def _status(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED_CODES:
        return "killed"
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


def load_mutants(modules: list[str] | None = None) -> list[Mutant]:
    """Every mutant with a result under mutants/ (only ``modules`` when given)."""
    out: list[Mutant] = []
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        path = str(meta.relative_to(ROOT / "mutants"))[: -len(".meta")]
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


def load_reasons() -> list[dict[str, str]]:
    doc = tomllib.loads(SURVIVORS.read_text(encoding="utf-8"))
    entries: list[dict[str, str]] = doc.get("survivor", [])
    return entries


def _key(
    path: str, function: str, removed: tuple[str, ...], added: tuple[str, ...]
) -> tuple[str, ...]:
    return (path, function, "\n".join(removed), "\n".join(added))


def entry_key(e: dict[str, str]) -> tuple[str, ...]:
    return (e["module"], e["function"], e["removed"].strip(), e["added"].strip())


def mutant_key(m: Mutant) -> tuple[str, ...]:
    return _key(m.path, m.function, m.removed, m.added)


def render(mutants: list[Mutant], reasons: dict[tuple[str, ...], str], header: str) -> str:
    by_module: dict[str, Counter[str]] = {}
    for m in mutants:
        by_module.setdefault(m.path, Counter())[m.status] += 1
    lines = [
        header,
        "",
        "| module | mutants | killed | survived | no tests | suspicious | not checked | score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path, c in sorted(by_module.items()):
        total = sum(c.values())
        checked = total - c["not checked"]
        score = f"{c['killed'] / checked:.1%}" if checked else "-"
        lines.append(
            f"| {path} | {total} | {c['killed']} | {c['survived']} | {c['no tests']} "
            f"| {c['suspicious']} | {c['not checked']} | {score} |"
        )
    lines += ["", "## Surviving mutants and why they are equivalent or harmless", ""]
    open_ = [m for m in mutants if m.status not in ("killed", "not checked")]
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
    return "\n".join(lines) + "\n"


def _pairs(removed: tuple[str, ...], added: tuple[str, ...]) -> list[tuple[str, str]]:
    n = max(len(removed), len(added))
    return [
        (removed[i] if i < len(removed) else "", added[i] if i < len(added) else "")
        for i in range(n)
    ]


def verdict(mutants: list[Mutant], reasons: dict[tuple[str, ...], str]) -> list[str]:
    """Why the run fails (empty: it passes)."""
    problems: list[str] = []
    by_module: dict[str, Counter[str]] = {}
    for m in mutants:
        by_module.setdefault(m.path, Counter())[m.status] += 1
        if m.status not in ("killed", "not checked") and mutant_key(m) not in reasons:
            problems.append(f"unreviewed {m.status} mutant {m.name}: {m.removed} -> {m.added}")
    for path, c in sorted(by_module.items()):
        checked = sum(c.values()) - c["not checked"]
        if c["not checked"]:
            problems.append(f"{path}: run incomplete, {c['not checked']} mutants not checked")
        if checked and c["killed"] / checked < MIN_SCORE:
            score = c["killed"] / checked
            problems.append(f"{path}: {score:.1%} of mutants killed, below {MIN_SCORE:.0%}")
    return problems


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
    parser.add_argument("--module", action="append", help="only this file (repeatable)")
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    parser.add_argument("--header", default="# Mutation report")
    parser.add_argument(
        "--skeleton", action="store_true", help="print survivors.toml entries for unreviewed ones"
    )
    args = parser.parse_args(argv)
    mutants = load_mutants(args.module)
    if not mutants:
        print("no mutation results under mutants/: run mutmut first", file=sys.stderr)
        return 1
    reasons = {entry_key(e): e["reason"] for e in load_reasons()}
    if args.skeleton:
        for m in mutants:
            if m.status not in ("killed", "not checked") and mutant_key(m) not in reasons:
                print(skeleton(m))
        return 0
    text = render(mutants, reasons, args.header)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    used = {mutant_key(m) for m in mutants}
    stale = [k for k in reasons if k not in used and (not args.module or k[0] in args.module)]
    for k in stale:
        print(f"note: reviewed survivor no longer produced (remove it): {k[:2]} {k[2]!r}")
    problems = verdict(mutants, reasons)
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
