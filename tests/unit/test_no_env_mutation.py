"""Tests pass settings, they do not change the environment: no module under tests/, bench/ or
harness/ sets or deletes environment variables (``monkeypatch.setenv``/``delenv``,
``os.environ[...] = ...``, ``os.environ.update``/``pop``/``clear``/``setdefault``, ``os.putenv``)
The session fixture (tests/conftest.py) builds the run's settings as values (``TestEnv`` with
its :class:`tests.support.RunSettings`); a test builds the settings of the code under test from
it and passes them (``TestEnv.platform()``, ``.projection()``, ``.ingest()``, ``.incident()``,
the typed configs); a child process gets its configuration as an explicit mapping given to the
process runner (``base=TestEnv.env(...)``; the runner has no default), which is passing, not
mutating.

The allow-list is reviewed by hand: :data:`ALLOWED` holds tests whose subject is reading the
environment itself and the clock's consuming of the session's request. A listed module that no
longer changes the environment must leave it."""

from __future__ import annotations

import ast

from shared.settings import REPO_ROOT

#: Tests of how a loader reads the environment (defaults when a variable is unset, refusals),
#: and the one change the session must make.
ALLOWED: dict[str, str] = {
    "tests/clock.py": "takes DCR_TODAY (a date run's request) out of the session's environment "
    "at configure time, so that no child process takes it for its own",
    "tests/unit/test_security.py": "SecuritySettings read DCR_ENV / DCR_PSEUDONYM_* themselves",
    "tests/unit/frontdesk/test_frontdesk_core.py": "the front desk's DCR_ENV default is prod",
    "tests/unit/ingest/test_notification.py": "the notifier's DCR_ENV default is prod",
    "tests/unit/simulator/test_cli.py": "the simulator's DCR_TODAY as the command reads it",
    "tests/unit/ingest/test_alerting_rules.py": "TZ: the rules must not depend on the host zone",
}

_ENVIRON_METHODS = {"update", "pop", "popitem", "clear", "setdefault", "__setitem__"}


def _is_environ(node: ast.expr) -> bool:
    """``os.environ`` or a bare ``environ``."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id == "environ"


def mutations(source: str, filename: str = "<test>") -> list[int]:
    """Line numbers where ``source`` changes the environment (see the module's docstring)."""
    out: list[int] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and (
                f.attr in ("setenv", "delenv", "putenv", "unsetenv")
                or (f.attr in _ENVIRON_METHODS and _is_environ(f.value))
            ):
                out.append(node.lineno)
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        out += [t.lineno for t in targets if isinstance(t, ast.Subscript) and _is_environ(t.value)]
    return sorted(out)


def _scan() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for d in ("tests", "bench", "harness"):
        for path in sorted((REPO_ROOT / d).rglob("*.py")):
            lines = mutations(path.read_text(encoding="utf-8"), str(path))
            if lines:
                found[str(path.relative_to(REPO_ROOT))] = lines
    return found


def test_no_test_changes_the_environment_outside_the_reviewed_lists() -> None:
    found = _scan()
    unexpected = {f: lines for f, lines in found.items() if f not in ALLOWED}
    assert unexpected == {}, (
        "pass settings (TestEnv.platform()/.projection()/.ingest(), the typed configs) or a "
        f"child's env= mapping instead of changing os.environ: {unexpected}"
    )
    converted = sorted(set(ALLOWED) - set(found))
    assert converted == [], f"no longer changes the environment: drop from the list {converted}"


def test_the_scan_sees_every_way_of_changing_the_environment() -> None:
    source = (
        "import os\n"
        "from os import environ\n"
        "def t(monkeypatch, base):\n"
        "    monkeypatch.setenv('A', '1')\n"
        "    monkeypatch.delenv('A')\n"
        "    os.environ['A'] = '1'\n"
        "    environ.update({'A': '1'})\n"
        "    os.environ.pop('A')\n"
        "    del os.environ['A']\n"
        "    os.putenv('A', '1')\n"
        "    read = os.environ['A'], os.environ.get('A'), dict(os.environ)\n"
        "    child = {**os.environ, 'A': '1'}\n"
    )
    assert mutations(source) == [4, 5, 6, 7, 8, 9, 10]


def test_the_session_and_every_test_pass_settings() -> None:
    """Issue 17's debt is paid: the session fixture, the helpers and the secured-broker fault
    tests change nothing, and only tests about reading the environment are listed."""
    assert not {f for f in ALLOWED if f.startswith(("tests/integration/", "tests/faults/"))}
    assert "tests/conftest.py" not in ALLOWED and "tests/support.py" not in ALLOWED
