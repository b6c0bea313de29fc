"""Services and commands of this repository as real child processes, for tests that kill them.

:class:`ServiceProcess` runs one service with uvicorn (``module:create_app --factory``) on a free
port, logs to a file, and can be SIGKILLed, terminated and restarted on the same port.
:func:`run_module` runs ``python -m <module>`` (rebuild, reconcile) and returns its exit code and
output. Children inherit ``os.environ`` (the test session's topic prefix, database and tokens)
plus the overrides given.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.settings import REPO_ROOT
from tests.support import poll_until, scrape_auth

INTAKE_APP = "services.intake.app:create_app"
SUPPLY_APP = "services.supply.app:create_app"
INCIDENT_APP = "services.incident.app:create_app"
PROJECTION_APP = "services.projection.app:create_app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """``uvicorn <app> --factory`` in its own process, on ``port`` (a free one by default)."""

    def __init__(
        self,
        log_dir: Path,
        name: str,
        app: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.port = port or free_port()
        self.name = name
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self.overrides = dict(env or {})
        self.env = {**os.environ, **self.overrides}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    self.app,
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200 now (asserts the process is still running)."""
        assert self.alive, f"{self.name} exited:\n{self.log()}"
        try:
            async with httpx.AsyncClient(timeout=2) as c:
                return (await c.get(f"{self.url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def wait_healthy(self, timeout: float = 30) -> None:
        await poll_until(self.healthy, timeout=timeout, what=f"{self.name} healthy")

    async def wait_listening(self, timeout: float = 30) -> None:
        """Until the HTTP server answers at all (``/healthz`` may still be 503)."""

        async def answers() -> bool:
            assert self.alive, f"{self.name} exited:\n{self.log()}"
            try:
                async with httpx.AsyncClient(timeout=2) as c:
                    await c.get(f"{self.url}/healthz")
                return True
            except httpx.HTTPError:
                return False

        await poll_until(answers, timeout=timeout, what=f"{self.name} listening")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, grace: float = 30) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restarted(self) -> ServiceProcess:
        """A new (not yet started) process of the same service, port and environment."""
        again = ServiceProcess(
            self.log_path.parent, self.name, self.app, port=self.port, env=self.overrides
        )
        again.env = dict(self.env)
        return again

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    async def metric(self, name: str) -> float:
        """Sum of all samples of a metric (all label sets)."""
        async with httpx.AsyncClient(timeout=5) as c:
            text = (await c.get(f"{self.url}/metrics", headers=scrape_auth())).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )


@dataclass(frozen=True)
class Finished:
    code: int
    out: str
    err: str


async def run_module(
    module: str, *args: str, timeout: float = 120, stdin: bytes | None = None, **env: str
) -> Finished:
    """``python -m module args...`` with ``os.environ`` plus ``env`` (and ``stdin`` on its
    standard input, if given); its exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
