"""Child processes of the harness: any program with its log file (:class:`ChildProcess`), a
service under uvicorn on a free port (:class:`ServiceProcess`), and ``python -m module`` run to
completion (:func:`run_module`).

Invariants: every process is started with the environment its caller gives (``base`` plus
the overrides; the harness never falls back on ``os.environ`` on its own) and logs to a file
in the caller's directory; ``terminate`` always ends it (SIGTERM, then SIGKILL after the grace
period); readiness is polled against a deadline, never slept for.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.poll import poll_until
from shared.service_table import service
from shared.settings import REPO_ROOT


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChildProcess:
    """``argv`` in its own process, run from the repository root, output to ``log_path``."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> ChildProcess:
        self.started_at = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own programs
                self.argv, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """RuntimeError with the log's tail if the process is not running."""
        if not self.alive:
            raise RuntimeError(f"{self.name} exited:\n{self.log()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, grace: float = 30) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; nothing if not running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self, chars: int = 4000) -> str:
        """The last ``chars`` characters of the log ("" before any output)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


class ServiceProcess(ChildProcess):
    """``uvicorn <app> --factory`` on ``port`` (a free one by default); its log is
    ``log_dir/<name>-<port>.log``. The environment is ``base`` plus ``env``."""

    def __init__(
        self,
        log_dir: Path,
        name: str,
        app: str,
        *,
        port: int | None = None,
        base: Mapping[str, str],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.overrides = dict(env or {})
        argv = [
            sys.executable, "-m", "uvicorn", app, "--factory",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        super().__init__(
            name,
            argv,
            log_dir / f"{name}-{self.port}.log",
            {**base, **self.overrides},
        )

    def start(self) -> ServiceProcess:
        super().start()
        return self

    async def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200 now (asserts the process is still running)."""
        assert self.alive, f"{self.name} exited:\n{self.log()}"
        try:
            async with httpx.AsyncClient(timeout=2) as c:
                return (await c.get(f"{self.url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def wait_healthy(self, timeout: float = 30) -> None:
        try:
            await poll_until(self.healthy, timeout=timeout, what=f"{self.name} healthy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log ---\n{self.log()}") from None

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

    def restarted(self) -> ServiceProcess:
        """A new (not yet started) process of the same service, port and environment."""
        return ServiceProcess(
            self.log_path.parent, self.name, self.app, port=self.port, env={}, base=self.env
        )

    async def metric(self, name: str, token: str) -> float:
        """Sum of all samples of a metric (all label sets), scraped with ``token`` (a clear
        token of a metrics reader)."""
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(f"{self.url}/metrics", headers={"Authorization": f"Bearer {token}"})
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in r.text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )


@dataclass(frozen=True)
class Finished:
    code: int
    out: str
    err: str


async def run_module(
    module: str,
    *args: str,
    base: Mapping[str, str],
    timeout: float = 120,
    stdin: bytes | None = None,
    **env: str,
) -> Finished:
    """``python -m module args...`` with ``base`` plus ``env`` (and
    ``stdin`` on its standard input, if given); its exit code and output. Killed (and
    TimeoutError raised) after ``timeout`` seconds."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=REPO_ROOT,
        env={**base, **env},
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


#: The apps of the service table (deploy/services.txt) the tests start most.
INTAKE_APP = service("intake").app
SUPPLY_APP = service("supply").app
INCIDENT_APP = service("incident").app
PROJECTION_APP = service("projection").app
FRONTDESK_APP = service("frontdesk").app
