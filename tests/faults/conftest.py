"""Fixtures and helpers of the fault-injection and hostile-input suite.

Every test runs in its own database and topic prefix (:func:`tests.support.isolated_env`) on top
of the session's ``test_env`` (same tokens), or on a throwaway broker / cluster of its own
(:mod:`tests.faults.throwaway`) when the fault is stopping the server. Each fault test ends with
the reconciliation command (``python -m services.projection.reconcile``) and prints what it
injected and what reconciliation said (``pytest -rP`` shows it for passing tests).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import pytest

from harness.process import (
    INCIDENT_APP,
    INTAKE_APP,
    PROJECTION_APP,
    SUPPLY_APP,
    Finished,
    ServiceProcess,
    run_module,
)
from shared.settings import REPO_ROOT
from tests.support import TestEnv, isolated_env


@pytest.fixture
async def fault_env(test_env: TestEnv) -> AsyncIterator[TestEnv]:
    """A fresh database and topic prefix on the shared broker: apps get its settings
    (``fault_env.projection()``...), child processes its environment (``fault_env.env()``)."""
    async with isolated_env(test_env, label="ftest", drop_topics=True) as env:
        yield env


@dataclass(frozen=True)
class Services:
    """The four services as real processes in one isolated environment."""

    env: TestEnv
    procs: dict[str, ServiceProcess]

    def url(self, name: str) -> str:
        return self.procs[name].url


@pytest.fixture(scope="package")
async def fault_services(
    test_env: TestEnv, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    """intake, supply, incident and projection (uvicorn processes) on their own database and
    topic prefix, shared by the hostile-HTTP-input tests (which never kill them); stopped when
    tests/faults is done."""
    logs = tmp_path_factory.mktemp("fault-services")
    async with isolated_env(test_env, label="fhttp", drop_topics=True) as env:
        apps = {
            "intake": INTAKE_APP,
            "supply": SUPPLY_APP,
            "incident": INCIDENT_APP,
            "projection": PROJECTION_APP,
        }
        procs = {
            name: ServiceProcess(logs, name, app, base=env.env()) for name, app in apps.items()
        }
        try:
            for p in procs.values():
                p.start()
            await asyncio.gather(*(p.wait_healthy(timeout=90) for p in procs.values()))
            yield Services(env, procs)
        finally:
            for p in procs.values():
                p.terminate()


@pytest.fixture(scope="session")
def kcat() -> str:
    """Debian's kcat (a Kafka client that is not ours), installed with apt if missing."""
    found = shutil.which("kcat")
    if found is None:
        subprocess.run(
            ["bash", "-c", f'source "{REPO_ROOT}/deploy/scripts/lib.sh" && apt_ensure kcat'],
            check=True,
            timeout=600,
        )
        found = shutil.which("kcat")
    assert found is not None, "kcat is not installed and could not be installed with apt"
    return found


async def reconcile(*, base: Mapping[str, str], wait_s: float = 60, **env: str) -> Finished:
    """Run the reconciliation command (with the child environment ``base``, e.g.
    ``fault_env.env()``, plus ``env``); print its report."""
    done = await run_module(
        "services.projection.reconcile",
        "--wait",
        str(wait_s),
        timeout=wait_s + 120,
        base=base,
        **env,
    )
    print(f"--- reconcile (exit {done.code}) ---\n{done.out}{done.err}")
    return done


def report(title: str, **facts: object) -> None:
    """Print what a test injected (shown by ``pytest -rP`` or when the test fails)."""
    print(f"=== {title} ===")
    for name, value in facts.items():
        print(f"  {name.replace('_', ' ')}: {value}")
