"""Throwaway Kafka and PostgreSQL servers that a fault test may stop, kill and restart.

The shared broker (127.0.0.1:9092) and cluster (5432) serve every other test and ``make up``:
they are never touched. These run on free ports with their own data directories, configured like
the shared ones (``deploy/kafka/server.properties``, or ``deploy/kafka/cluster.properties`` for
each node of a 3-node cluster; Debian's PostgreSQL 15 binaries with the dcr role and the
migrations), and are removed when the test ends.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from harness.poll import poll_until
from harness.process import free_port
from shared.db.migrate import apply_migrations
from shared.kafka.admin import ensure_topics, wait_until_ready
from shared.kafka.security import Target, target_kwargs
from shared.settings import REPO_ROOT, KafkaSettings

KAFKA_DEPS = REPO_ROOT / ".deps" / "kafka"
KAFKA_TEMPLATE = REPO_ROOT / "deploy" / "kafka" / "server.properties"
KAFKA_CLUSTER_TEMPLATE = REPO_ROOT / "deploy" / "kafka" / "cluster.properties"
KAFKA_LOG4J = REPO_ROOT / "deploy" / "kafka" / "log4j2.yaml"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class ThrowawayKafka:
    """A single-node KRaft broker on free ports; stop/kill and start again on the same data."""

    #: Heap of the JVM: 512 MiB for a lone broker; each of a cluster's three nodes gets less.
    heap = "512m"

    def __init__(
        self, work: Path, port: int | None = None, controller_port: int | None = None
    ) -> None:
        self.work = work
        self.data = work / "data"
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.props = work / "server.properties"
        self.log_path = work / "kafka.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("java")) and any(KAFKA_DEPS.glob("kafka_2.13-*.jar"))

    def _java(self, *args: str) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
            f"-Dkafka.logs.dir={self.work}",
            "-cp",
            f"{KAFKA_DEPS}/*",
            *args,
        ]

    def render(self) -> str:
        """The properties: shared single-node template with our ports and data dir."""
        text = KAFKA_TEMPLATE.read_text().replace("@DATA_DIR@", str(self.data))
        text = re.sub(r"127\.0\.0\.1:9092\b", f"127.0.0.1:{self.port}", text)
        text = re.sub(r"127\.0\.0\.1:19093\b", f"127.0.0.1:{self.controller_port}", text)
        assert f":{self.port}" in text and f":{self.controller_port}" in text
        return text

    def format_command(self, cluster_id: str | None = None) -> list[str]:
        """Write the properties; the StorageTool command that formats our data dir."""
        self.data.mkdir(parents=True, exist_ok=True)
        self.props.write_text(self.render())
        cluster_id = cluster_id or new_cluster_id()
        args = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.props)]
        return self._java(*args, *self.format_flags)

    #: A lone node is its own controller quorum.
    format_flags: tuple[str, ...] = ("--standalone",)

    def format(self) -> None:
        """Render the properties (shared template, our ports and data dir) and format storage."""
        self.data.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            subprocess.run(
                self.format_command(),
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
            )

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts + 1} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self._java("kafka.Kafka", str(self.props)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    async def wait_ready(self, timeout: float = 90) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        await wait_until_ready(self.bootstrap, timeout=timeout)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> None:
        """Send ``sig`` and wait for the broker to exit (SIGKILL if it outlives ``timeout``)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def new_cluster_id() -> str:
    """A random KRaft cluster id, never starting with '-' (Kafka's own ``Uuid.randomUuid`` rule:
    StorageTool would read ``-t -abc...`` as an option and refuse to format, 1 run in 64)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class ClusterNode(ThrowawayKafka):
    """One broker+controller of a :class:`ThrowawayKafkaCluster` (``cluster.properties``)."""

    heap = "384m"
    format_flags = ()  # static quorum: controller.quorum.voters names all three

    def __init__(
        self,
        work: Path,
        node_id: int,
        port: int,
        controller_port: int,
        secrets: Path | None = None,
    ) -> None:
        super().__init__(work, port, controller_port)
        self.node_id = node_id
        self.voters = ""
        #: kafka-secrets.sh's directory: the node runs with the security overlay (as
        #: ``kafka.sh`` renders it for KAFKA_NODES=3); None: PLAINTEXT.
        self.secrets = secrets

    def render(self) -> str:
        text = KAFKA_CLUSTER_TEMPLATE.read_text()
        for name, value in {
            "@NODE_ID@": str(self.node_id),
            "@PORT@": str(self.port),
            "@CONTROLLER_PORT@": str(self.controller_port),
            "@VOTERS@": self.voters,
            "@DATA_DIR@": str(self.data),
        }.items():
            text = text.replace(name, value)
        settings = [line for line in text.splitlines() if not line.startswith("#")]
        assert not re.search(r"@[A-Z_]+@", "\n".join(settings)), "a placeholder left"
        if self.secrets is not None:  # cluster.properties, then the overlay (later keys win)
            text += "\n" + secured_overlay(self.secrets, self.port, self.controller_port)
        return text

    def format_command(self, cluster_id: str | None = None) -> list[str]:
        """As a lone broker's, plus every identity's SCRAM credential on a secured node
        (whose properties, holding the admin password, become 0600)."""
        if self.secrets is not None:
            self.format_flags = scram_flags(self.secrets)
        command = super().format_command(cluster_id)
        if self.secrets is not None:
            self.props.chmod(0o600)
        return command


class ThrowawayKafkaCluster:
    """Three KRaft nodes (each broker + controller, heap 384 MiB) on free ports with their own
    data dirs: any one may be killed and restarted on the same data; two down stop writes.

    With ``secrets`` (a directory of :func:`make_kafka_secrets`) the nodes run like ``make up
    KAFKA_NODES=3``: the security overlay on ``cluster.properties`` (SASL_SSL, SCRAM identities
    added at format, the standard authorizer, deny by default); :meth:`settings` gives each
    identity's client settings and :attr:`target` is then the admin's."""

    size = 3

    def __init__(self, work: Path, secrets: Path | None = None) -> None:
        self.secrets = secrets
        self.nodes = [
            ClusterNode(work / f"node{i}", i, free_port(), free_port(), secrets)
            for i in range(1, self.size + 1)
        ]
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        for n in self.nodes:
            n.voters = voters
        self.bootstrap = ",".join(n.bootstrap for n in self.nodes)

    def settings(self, username: str, topic_prefix: str = "", **overrides: object) -> KafkaSettings:
        """The KafkaSettings a process of identity ``username`` would run with (secured only)."""
        assert self.secrets is not None, "a PLAINTEXT cluster has no identities"
        return secured_settings(
            self.bootstrap, self.secrets, "SASL_SSL", username, topic_prefix, **overrides
        )

    @property
    def target(self) -> Target:
        """What the admin helpers connect with: the admin identity, or the bare bootstrap."""
        return self.bootstrap if self.secrets is None else self.settings("admin")

    def node(self, node_id: int) -> ClusterNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def format(self) -> None:
        """Format the three data dirs with one cluster id (in parallel: 3 JVM starts)."""
        cluster_id = new_cluster_id()
        procs = []
        for n in self.nodes:
            n.work.mkdir(parents=True, exist_ok=True)
            with n.log_path.open("ab") as log:
                procs.append(
                    subprocess.Popen(
                        n.format_command(cluster_id), stdout=log, stderr=subprocess.STDOUT
                    )
                )
        for n, p in zip(self.nodes, procs, strict=True):
            assert p.wait(timeout=120) == 0, n.log()

    def start(self) -> None:
        for n in self.nodes:
            n.start()

    async def live_brokers(self) -> set[int]:
        """Ids of the brokers the cluster's metadata lists (registered and not fenced)."""
        admin = AIOKafkaAdminClient(**target_kwargs(self.target), request_timeout_ms=3000)
        try:
            await admin.start()
            described = await admin.describe_cluster()
            return {int(b["node_id"]) for b in described["brokers"]}
        finally:
            await admin.close()

    async def wait_brokers(self, expected: set[int], timeout: float = 120) -> None:
        """Until exactly ``expected`` brokers are live in the metadata (a node of them that
        exits fails at once)."""
        seen: set[int] | Exception = set()

        async def all_live() -> bool:
            nonlocal seen
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None and n.node_id in expected:
                    raise AssertionError(f"node {n.node_id} exited:\n{n.log()}")
            try:
                seen = await self.live_brokers()
            except (KafkaError, OSError) as exc:
                seen = exc
            return seen == expected

        try:
            await poll_until(all_live, timeout=timeout, interval=0.5, what="brokers live")
        except AssertionError as exc:
            if "timed out" not in str(exc):
                raise
            raise TimeoutError(
                f"brokers {sorted(expected)} not live after {timeout}s: {seen!r}"
            ) from None

    def kill(self) -> None:
        for n in self.nodes:
            n.stop(signal.SIGKILL)


KAFKA_SECURED_OVERLAY = REPO_ROOT / "deploy" / "kafka" / "secured.properties"
KAFKA_SECRETS_SCRIPT = REPO_ROOT / "deploy" / "scripts" / "kafka-secrets.sh"
#: The identities kafka-secrets.sh creates (admin + one per service).
KAFKA_IDENTITIES = ("admin", "intake", "supply", "incident", "projection")


def make_kafka_secrets(directory: Path) -> Path:
    """Passwords, CA and broker certificate in ``directory`` (the scripts' own generator)."""
    subprocess.run([str(KAFKA_SECRETS_SCRIPT), str(directory)], check=True, timeout=120)
    return directory


def secured_overlay(
    secrets: Path, port: int, controller_port: int, client_protocol: str = "SASL_SSL"
) -> str:
    """deploy/kafka/secured.properties rendered for one node."""
    text = KAFKA_SECURED_OVERLAY.read_text()
    for name, value in {
        "@PORT@": str(port),
        "@CONTROLLER_PORT@": str(controller_port),
        "@CLIENT_PROTOCOL@": client_protocol,
        "@TLS_DIR@": str(secrets / "tls"),
        "@ADMIN_PASSWORD@": (secrets / "admin.password").read_text().strip(),
    }.items():
        text = text.replace(name, value)
    return text


def scram_flags(secrets: Path) -> tuple[str, ...]:
    """StorageTool ``--add-scram`` arguments: every identity's SCRAM-SHA-512 credential."""
    flags: list[str] = []
    for who in KAFKA_IDENTITIES:
        password = (secrets / f"{who}.password").read_text().strip()
        flags += ["--add-scram", f"SCRAM-SHA-512=[name={who},password={password}]"]
    return tuple(flags)


def secured_settings(
    bootstrap: str,
    secrets: Path,
    protocol: str,
    username: str,
    topic_prefix: str = "",
    **overrides: object,
) -> KafkaSettings:
    """The KafkaSettings of identity ``username`` on a secured broker or cluster whose secrets
    are in ``secrets`` (the CA only with SASL_SSL)."""
    values: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "security_protocol": protocol,
        "username": username,
        "password_file": secrets / f"{username}.password",
        "ca_file": secrets / "tls" / "ca.pem" if protocol == "SASL_SSL" else None,
        "topic_prefix": topic_prefix,
        **overrides,
    }
    return KafkaSettings.model_validate(values)


class SecuredKafka(ThrowawayKafka):
    """A single-node throwaway broker with the cluster's security (SASL/SCRAM identities, TLS
    unless ``client_protocol="SASL_PLAINTEXT"``, the standard authorizer, deny by default)."""

    def __init__(self, work: Path, secrets: Path, client_protocol: str = "SASL_SSL") -> None:
        super().__init__(work)
        self.secrets = secrets
        self.client_protocol = client_protocol

    @property
    def tls(self) -> bool:
        return self.client_protocol == "SASL_SSL"

    def render(self) -> str:
        overlay = secured_overlay(
            self.secrets, self.port, self.controller_port, self.client_protocol
        )
        return super().render() + "\n" + overlay

    def format(self) -> None:
        self.format_flags = ("--standalone", *scram_flags(self.secrets))
        super().format()
        self.props.chmod(0o600)  # holds the admin password

    def settings(self, username: str, topic_prefix: str = "", **overrides: object) -> KafkaSettings:
        """The KafkaSettings a process of identity ``username`` would run with."""
        return secured_settings(
            self.bootstrap, self.secrets, self.client_protocol, username, topic_prefix, **overrides
        )

    async def wait_ready(self, timeout: float = 90) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        await wait_until_ready(self.settings("admin"), timeout=timeout)


async def try_write(kwargs: dict[str, Any], topic: str, value: bytes = b"{}") -> KafkaError | None:
    """Write one record to ``topic`` with these client arguments (acks=all); the error that
    stopped it, None if it was written (a forged record's fate on a secured broker)."""
    producer = AIOKafkaProducer(**kwargs, acks="all", request_timeout_ms=5000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value)
    except KafkaError as exc:
        return exc
    finally:
        await producer.stop()
    return None


@contextlib.asynccontextmanager
async def throwaway_kafka(work: Path, topic_prefix: str) -> AsyncIterator[ThrowawayKafka]:
    """A formatted, running throwaway broker with the catalogue topics under ``topic_prefix``."""
    kafka = ThrowawayKafka(work)
    kafka.format()
    kafka.start()
    try:
        await kafka.wait_ready()
        await ensure_topics(kafka.bootstrap, 6, prefix=topic_prefix)
        yield kafka
    finally:
        kafka.stop(signal.SIGKILL)


def _as_postgres(*argv: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}\n{done.stderr}"
    return done.stdout


class ThrowawayPostgres:
    """A PostgreSQL 15 cluster of its own (initdb in a temporary directory owned by the
    ``postgres`` OS user) on a free port, with role ``dcr`` and a migrated database ``dcr``."""

    def __init__(self) -> None:
        # not under pytest's tmp_path: the postgres user must be able to enter the directory
        self.root = Path(tempfile.mkdtemp(prefix="dcr-faults-pg-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self.log_path = self.root / "server.log"
        self.dsn = f"postgresql://dcr:dcr@127.0.0.1:{self.port}/dcr"

    @staticmethod
    def available() -> bool:
        return (PG_BIN / "initdb").exists() and os.geteuid() == 0 and bool(shutil.which("runuser"))

    def init(self) -> None:
        _as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (clean) or ``immediate`` (like a crash: recovery on start)."""
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def psql(self, sql: str) -> str:
        return _as_postgres(
            str(PG_BIN / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.root),
            "-p",
            str(self.port),
            "-d",
            "postgres",
            "-c",
            sql,
        )

    async def provision(self) -> None:
        self.psql("CREATE ROLE dcr LOGIN CREATEDB PASSWORD 'dcr'")
        self.psql("CREATE DATABASE dcr OWNER dcr")
        await apply_migrations(self.dsn)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def remove(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.asynccontextmanager
async def throwaway_postgres() -> AsyncIterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres()
    try:
        pg.init()
        pg.start()
        await pg.provision()
        yield pg
    finally:
        pg.remove()
