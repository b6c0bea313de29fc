"""pytest plugin for mutation runs only (``[tool.mutmut] pytest_add_cli_args`` loads it with
``-p``; ``make test`` never does): run a mutant's tests fastest first.

mutmut runs each mutant against the unit tests that call the mutated function, with ``-x``, so
the run ends at the first failing test. Which tests run and what they assert is unchanged; only
their order is: ascending by the duration mutmut measured for each test in its clean stats run
(``mutmut-stats.json`` in the working directory, ``mutants/``). A mutant a quick test catches
is then decided in seconds instead of after the slow LP audits of suppression.py (the week
audited with its seven released days takes 5-12 s; most other tests take well under 1 s).
A surviving mutant still runs every test. Before the stats exist (the stats run itself) the
order is pytest's own. Unit tests do not depend on their order (each builds its own data).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: Written by mutmut after its stats run, in the directory it runs the tests from (mutants/).
STATS = Path("mutmut-stats.json")


def durations(stats: Path = STATS) -> dict[str, float]:
    """Seconds per test node id from mutmut's stats run; empty before that run."""
    if not stats.exists():
        return {}
    recorded: dict[str, float] = json.loads(stats.read_text(encoding="utf-8"))["duration_by_test"]
    return recorded


def fastest_first(items: list[pytest.Item], seconds: dict[str, float]) -> None:
    """Sort ``items`` in place by their measured duration (unknown ones last, in their order)."""
    slowest = max(seconds.values(), default=0.0)
    items.sort(key=lambda item: seconds.get(item.nodeid, slowest + 1.0))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    seconds = durations()
    if seconds:
        fastest_first(items, seconds)
