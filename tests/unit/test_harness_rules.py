"""The import rules of the platform harness (docs/architecture.md): ``harness/`` imports
``shared/`` only; no deployed code (``shared/``, ``services/``) imports the harness; the
benchmarks never import ``tests/``. Checked on the source, so a violation fails here first."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.settings import REPO_ROOT


def _imports(package: str) -> dict[str, set[str]]:
    """Top-level package of every module each file of ``package`` imports."""
    out: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
        out[str(Path(path).relative_to(REPO_ROOT))] = found
    return out


def test_the_harness_imports_shared_only() -> None:
    ours = {"harness", "shared", "services", "tests", "bench"}
    wrong = {f: m & ours - {"harness", "shared"} for f, m in _imports("harness").items()}
    assert not {f: m for f, m in wrong.items() if m}


def test_no_deployed_code_imports_the_harness() -> None:
    for package in ("shared", "services"):
        offenders = [f for f, m in _imports(package).items() if "harness" in m]
        assert offenders == [], offenders
    # nor the service table, which reads deploy/services.txt (not in the service image)
    readers = [
        p for p in (REPO_ROOT / "services").rglob("*.py") if "service_table" in p.read_text()
    ]
    assert readers == [], readers


def test_the_benchmarks_never_import_tests() -> None:
    offenders = [f for f, m in _imports("bench").items() if "tests" in m]
    assert offenders == [], offenders
    assert any("harness" in m for m in _imports("bench").values()), "bench runs on the harness"
