"""No sleep as synchronisation in the tests or in the harness and benchmark helpers they run:
every ``sleep(...)`` call under tests/, bench/ and harness/ says on its line what it is, and only
a few things may be: the interval of a poll that checks a condition with a deadline, the pacing
of a load generator, the sampling interval of a measurement, a bare yield to the event loop, a
backoff the server asked for, or a fault injected at a random moment. A sleep that waits for
something to have happened must become a wait on that condition (``harness.poll.poll_until``)
or on an event."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from shared.settings import REPO_ROOT

#: The purposes a sleep may have, as its line's comment names them.
ALLOWED = re.compile(
    r"#.*\b(polling interval|pacing|sampling interval|only yield|Retry-After|random moment"
    r"|clock still runs)\b"
)


def _sleeps(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of every call of something named ``sleep``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for node in ast.walk(ast.parse("\n".join(lines), str(path))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name == "sleep":
            out.append((node.lineno, lines[node.lineno - 1]))
    return sorted(out)


def test_every_sleep_in_tests_and_bench_is_pacing_or_a_poll_interval() -> None:
    files = [
        p for d in ("tests", "bench", "harness") for p in sorted((REPO_ROOT / d).rglob("*.py"))
    ]
    found = {
        f"{path.relative_to(REPO_ROOT)}:{n}": line.strip()
        for path in files
        for n, line in _sleeps(path)
    }
    assert len(found) >= 10  # the scan sees the known ones (poll_until's interval among them)
    unexplained = {k: v for k, v in found.items() if not ALLOWED.search(v)}
    assert unexplained == {}, "a sleep that may be waiting for something: " + repr(unexplained)


def test_the_scan_finds_an_unexplained_sleep(tmp_path: Path) -> None:
    f = tmp_path / "t.py"
    f.write_text(
        "import asyncio, time\n"
        "async def t():\n"
        "    await asyncio.sleep(0.5)\n"
        "    time.sleep(1)  # polling interval\n"
    )
    found = _sleeps(f)
    assert [n for n, _ in found] == [3, 4]
    assert [bool(ALLOWED.search(line)) for _, line in found] == [False, True]
