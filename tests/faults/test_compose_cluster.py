"""docker-compose's secured `cluster` profile, run without Docker (issue 16).

There is no Docker engine on the test machine, so this runs what the profile's containers run,
on the host: the one-shot ``kafka-secrets`` job's command (deploy/scripts/kafka-secrets.sh with
``--layout``), the nodes' entry point (deploy/kafka/compose-node.sh, from the compose file, with
the Maven jars standing in for the apache/kafka image's /opt/kafka and free ports standing in
for the containers' 9092/19093), then the ``init`` job's topic creation and the ``kafka-acls``
job's ACLs as admin, with the settings of deploy/kafka/cluster.env. Checked:

- each identity's subpath holds only its password and the CA (0400 in a 0500 directory), the
  brokers' copy no CA key;
- the three nodes form a SASL_SSL cluster with the SCRAM identities added at format; topics get
  3 replicas; an anonymous client gets nothing in; intake (with its own subpath's credential)
  writes dcr.visits but not dcr.incidents;
- a node whose storage was formatted without the identities refuses to start (never wiped).

Not covered (needs a Docker host): the image's user ids, volume subpath mounts, health checks.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAuthorizationFailedError

from harness.isolation import kafka_env
from harness.process import ChildProcess, free_port, run_module
from shared.kafka.admin import wait_until_ready
from shared.kafka.security import client_kwargs
from shared.kafka.topics import EVENT_TOPICS, INCIDENTS, VISITS
from shared.settings import REPO_ROOT, KafkaSettings
from tests.faults.conftest import report
from tests.faults.throwaway import (
    KAFKA_IDENTITIES,
    KAFKA_SECRETS_SCRIPT,
    ClusterNode,
    ThrowawayKafka,
    new_cluster_id,
    try_write,
)

pytestmark = pytest.mark.integration

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
PREFIX = "fcompose."


def cluster_env() -> dict[str, str]:
    lines = (KAFKA_DIR / "cluster.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def host_path(container_path: str) -> str:
    """A path of the nodes' containers on this host (``./deploy/kafka`` is at /dcr/kafka)."""
    volumes = COMPOSE["services"]["kafka"]["volumes"]
    mounted = next(v for v in volumes if isinstance(v, str) and v.startswith("./deploy/kafka:"))
    source, target, _ = mounted.split(":")
    return container_path.replace(target, str(REPO_ROOT / source.removeprefix("./")))


def fake_kafka_home(work: Path) -> Path:
    """A KAFKA_HOME whose bin/kafka-storage.sh and bin/kafka-server-start.sh run the Maven jars
    (the same JVM settings as the throwaway cluster's nodes)."""
    node = ClusterNode(work, 0, 0, 0)
    for script, main in (
        ("kafka-storage.sh", "kafka.tools.StorageTool"),
        ("kafka-server-start.sh", "kafka.Kafka"),
    ):
        path = work / "bin" / script
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'#!/bin/sh\nexec {shlex.join(node._java(main))} "$@"\n')
        path.chmod(0o755)
    return work


def node_command() -> list[str]:
    """The kafka nodes' entry point from docker-compose.yml, with host paths."""
    entrypoints = {tuple(COMPOSE["services"][n]["entrypoint"]) for n in ("kafka", "kafka-2")}
    assert len(entrypoints) == 1
    return [host_path(word) for word in entrypoints.pop()]


def run_secrets_job(auth: Path) -> None:
    """The kafka-secrets job's command from docker-compose.yml with its volume at ``auth``
    (files owned by us instead of the images' users)."""
    uid = str(os.getuid())
    job = COMPOSE["services"]["kafka-secrets"]["command"]
    assert REPO_ROOT / job[1] == KAFKA_SECRETS_SCRIPT and job[3] == "--layout"
    volume_paths = [w.replace("/kafka-auth", str(auth)) for w in (job[2], job[4])]
    argv = [job[0], str(KAFKA_SECRETS_SCRIPT), volume_paths[0], "--layout", volume_paths[1]]
    subprocess.run([*argv, uid, uid], check=True, timeout=120)


def run_to_end(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def check_layout(auth: Path) -> None:
    """Each identity sees its own password and the CA only; the brokers no CA key."""
    for who in KAFKA_IDENTITIES:
        assert sorted(p.name for p in (auth / who).iterdir()) == ["ca.pem", "password"]
        assert _mode(auth / who) == 0o500 and _mode(auth / who / "password") == 0o400
    broker = sorted(str(p.relative_to(auth / "broker")) for p in (auth / "broker").rglob("*"))
    assert broker == sorted(
        [f"{who}.password" for who in KAFKA_IDENTITIES] + ["tls", "tls/broker.pem", "tls/ca.pem"]
    )
    assert not list((auth / "broker").rglob("ca.key"))


def as_identity(bootstrap: str, auth: Path, who: str, protocol: str) -> KafkaSettings:
    """The settings a compose process of identity ``who`` runs with (its subpath's files)."""
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        security_protocol=protocol,
        username=who,
        password_file=auth / who / "password",
        ca_file=auth / who / "ca.pem",
        replication_factor=3,
        topic_prefix=PREFIX,
    )


async def test_compose_cluster_profile_runs_secured(tmp_path: Path) -> None:
    if not ThrowawayKafka.available():
        pytest.fail("Kafka jars missing: run deploy/scripts/kafka.sh install")
    env_file = cluster_env()
    protocol = env_file["DCR_KAFKA_SECURITY_PROTOCOL"]
    auth = tmp_path / "auth"
    run_secrets_job(auth)
    check_layout(auth)

    kafka_home = fake_kafka_home(tmp_path / "kafka-home")
    ports = [(free_port(), free_port()) for _ in range(3)]
    voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports, start=1))
    bootstrap = ",".join(f"127.0.0.1:{p}" for p, _ in ports)
    cluster_id = new_cluster_id()
    nodes: list[ChildProcess] = []

    def node_env(i: int, data: Path) -> dict[str, str]:
        port, controller_port = ports[i - 1]
        run = data.parent
        return {
            **os.environ,
            "KAFKA_NODE_ID": str(i),
            "DCR_NODE_SECURED": env_file["DCR_NODE_SECURED"],
            "DCR_NODE_CLIENT_PROTOCOL": protocol,
            "DCR_NODE_HOST": "127.0.0.1",  # the containers: kafka, kafka-2, kafka-3
            "KAFKA_CONTROLLER_QUORUM_VOTERS": voters,
            "CLUSTER_ID": cluster_id,
            "KAFKA_HOME": str(kafka_home),
            "DCR_NODE_CONF": host_path("/dcr/kafka"),
            "DCR_NODE_SECRETS": str(auth / "broker"),
            "DCR_NODE_DATA": str(data),
            "DCR_NODE_RUN": str(run),
            "DCR_NODE_PORT": str(port),
            "DCR_NODE_CONTROLLER_PORT": str(controller_port),
        }

    try:
        for i in (1, 2, 3):
            data = tmp_path / f"node{i}" / "data"
            data.mkdir(parents=True)
            log = tmp_path / f"node{i}" / "node.log"
            nodes.append(ChildProcess(f"kafka-{i}", node_command(), log, node_env(i, data)).start())
        admin = as_identity(bootstrap, auth, "admin", protocol)
        try:
            await wait_until_ready(admin, timeout=120, brokers=3)
        except TimeoutError:
            raise AssertionError("\n".join(n.log() for n in nodes)) from None
        for i in (1, 2, 3):
            run = tmp_path / f"node{i}"
            assert _mode(run / "dcr-server.properties") == 0o600
            assert _mode(run / "dcr-admin.properties") == 0o600
            assert (run / "data" / "dcr-secured").exists()

        # the init job's topics and the kafka-acls job's ACLs, as admin
        for module, args in (
            ("shared.kafka.admin", ("ensure",)),
            ("shared.kafka.acls", ("apply",)),
        ):
            done = await run_module(
                module,
                *args,
                timeout=180,
                base=os.environ,  # the shell's: this test runs no service of the platform
                **kafka_env(admin),
                DCR_KAFKA_TOPIC_PREFIX=PREFIX,
                DCR_KAFKA_REPLICATION_FACTOR="3",
            )
            assert done.code == 0, done.out + done.err
        client = AIOKafkaAdminClient(**client_kwargs(admin))
        await client.start()
        try:
            described = await client.describe_topics([PREFIX + t for t in EVENT_TOPICS])
        finally:
            await client.close()
        assert all(len(p["replicas"]) == 3 for t in described for p in t["partitions"])

        intake = client_kwargs(as_identity(bootstrap, auth, "intake", protocol))
        anonymous = await try_write({"bootstrap_servers": bootstrap}, PREFIX + VISITS)
        own_topic = await try_write(intake, PREFIX + VISITS)
        other_topic = await try_write(intake, PREFIX + INCIDENTS)
        report(
            "compose cluster profile on the host",
            protocol=protocol,
            anonymous=type(anonymous).__name__,
            intake_to_visits=own_topic,
            intake_to_incidents=type(other_topic).__name__,
        )
        assert anonymous is not None
        assert own_topic is None
        assert isinstance(other_topic, TopicAuthorizationFailedError)
    finally:
        for n in nodes:
            if n.alive:
                n.kill9()

    # a volume formatted without the identities is refused, never reused or wiped
    plain = tmp_path / "plain" / "data"
    plain.mkdir(parents=True)
    (plain / "meta.properties").write_text("version=1\n")
    refused = run_to_end(node_command(), node_env(1, plain))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "formatted without the SCRAM identities" in refused.stderr
    assert (plain / "meta.properties").read_text() == "version=1\n"
