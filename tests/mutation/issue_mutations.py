"""The reviewer's one-line mutations of issue 19, each applied to a scratch copy of the
repository and run against the unit tests that should catch it: every one must be killed.

mutmut 3 mutates function bodies only; this list also covers module-level constants (the
required headers) and whole relations, and keeps the issue's findings from coming back.
Run: ``.venv/bin/python -m tests.mutation.issue_mutations [--module path.py]`` (``make
mutation`` runs it; with ``MODULE=path.py``, only the mutations of that file).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What the unit tests import or read (as [tool.mutmut] copies it: tests/conftest.py imports
#: harness/, deployment checks read the Makefile and docker-compose.yml).
COPY = (
    "services",
    "shared",
    "tests",
    "harness",
    "bench",
    "deploy",
    "pyproject.toml",
    "Makefile",
    "docker-compose.yml",
)


@dataclass(frozen=True)
class Mutation:
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "the alert's facility check inverted: every real alert is dead-lettered",
        "services/projection/domain.py",
        "data.facility_id not in city.facility_by_id",
        "data.facility_id in city.facility_by_id",
        ("tests/unit/projection",),
    ),
    Mutation(
        "the deaths = outcome died relation removed from suppression",
        "services/projection/suppression.py",
        'Relation(c("deaths"), (c(f"incidents_by_outcome.{Outcome.DIED.value}"),)),',
        "",
        ("tests/unit/projection",),
    ),
    Mutation(
        "restore keeps overdoses from now - max_lateness instead of now - max_lateness - window",
        "services/incident/alerting.py",
        "oldest_kept = now - rules.max_lateness - rules.window\n        oldest_episode_end",
        "oldest_kept = now - rules.max_lateness\n        oldest_episode_end",
        ("tests/unit/ingest",),
    ),
    Mutation(
        "ce_time dropped from the required headers",
        "shared/events/envelope.py",
        '_REQUIRED = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time")',
        '_REQUIRED = ("ce_specversion", "ce_id", "ce_type", "ce_source")',
        ("tests/unit/test_event_contract.py", "tests/unit/test_envelope_properties.py"),
    ),
    Mutation(
        "the alert window's lower bound < becomes <=",
        "services/incident/alerting.py",
        "start - rules.window < t <= start",
        "start - rules.window <= t <= start",
        ("tests/unit/ingest",),
    ),
    Mutation(
        "the duplicate check ignores the event source",
        "services/projection/domain.py",
        "(env.source, str(env.id))",
        '("", str(env.id))',
        ("tests/unit/projection",),
    ),
    Mutation(
        "visit minutes shown while visits_completed is hidden as a complement",
        "services/projection/suppression.py",
        "if completed is None or completed < threshold:",
        "if completed is not None and completed < threshold:",
        ("tests/unit/projection",),
    ),
    Mutation(
        "the idempotency fingerprint ignores the body",
        "shared/privacy.py",
        'b"body\\x1f" + data',
        'b"body\\x1f"',
        ("tests/unit/ingest", "tests/unit/test_security.py"),
    ),
)


def killed(m: Mutation, scratch: Path) -> tuple[bool, str]:
    """Apply ``m`` in ``scratch``, run its tests, restore the file.

    Returns (killed?, pytest's last line)."""
    target = scratch / m.path
    original = target.read_text(encoding="utf-8")
    if original.count(m.old) != 1:
        raise SystemExit(f"{m.path}: expected one occurrence of {m.old!r}; update this list")
    target.write_text(original.replace(m.old, m.new), encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        target.write_text(original, encoding="utf-8")
    lines = done.stdout.strip().splitlines()
    last = lines[-1] if lines else done.stderr[-200:]
    if done.returncode not in (0, 1):  # the tests did not run: neither killed nor survived
        raise SystemExit(f"{m.path}: the tests could not run (exit {done.returncode}): {last}")
    return done.returncode == 1, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", help="only the mutations of this file")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.module in (None, m.path)]
    if not chosen:
        print(f"no issue mutations of {args.module}")
        return 0
    with tempfile.TemporaryDirectory(prefix="dcr-mutations-") as tmp:
        scratch = Path(tmp)
        for name in COPY:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, scratch / name)
        survivors = 0
        for m in chosen:
            ok, last = killed(m, scratch)
            survivors += not ok
            print(f"{'killed  ' if ok else 'SURVIVED'}  {m.what}  [{last}]", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} issue mutations killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
