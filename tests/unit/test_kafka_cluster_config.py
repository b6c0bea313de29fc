"""The 3-node Kafka cluster's settings: every copy of the configuration says the same thing
(replication factor 3, min.insync.replicas=2, unclean leader election off), and a cluster's
bootstrap list reaches every client."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from shared.kafka.acls import ADMIN, SERVICES
from shared.kafka.admin import min_insync_replicas, topic_config
from shared.settings import REPO_ROOT, KafkaSettings
from tests.faults.throwaway import KAFKA_IDENTITIES, ThrowawayKafkaCluster, new_cluster_id

KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
SCRIPTS = REPO_ROOT / "deploy" / "scripts"


def properties(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_acknowledged_writes_need_two_copies_on_three_brokers() -> None:
    assert min_insync_replicas(3) == 2
    assert min_insync_replicas(1) == 1  # the single development node
    assert topic_config(3)["min.insync.replicas"] == "2"
    assert topic_config(3)["retention.ms"] == "-1"


def test_a_comma_separated_bootstrap_reaches_every_broker() -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:9092, 127.0.0.1:9192,127.0.0.1:9292,")
    assert settings.bootstrap_list() == ["127.0.0.1:9092", "127.0.0.1:9192", "127.0.0.1:9292"]


def test_cluster_nodes_render_to_one_quorum_on_distinct_ports(tmp_path: Path) -> None:
    cluster = ThrowawayKafkaCluster(tmp_path)
    rendered = [properties(n.render()) for n in cluster.nodes]
    assert [p["node.id"] for p in rendered] == ["1", "2", "3"]
    assert len({p["listeners"] for p in rendered}) == 3
    assert len({p["log.dirs"] for p in rendered}) == 3
    voters = {p["controller.quorum.voters"] for p in rendered}
    assert len(voters) == 1 and len(voters.pop().split(",")) == 3
    for p in rendered:
        assert p["default.replication.factor"] == "3"
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["min.insync.replicas"] == "2"
        assert p["transaction.state.log.min.isr"] == "2"
        assert p["unclean.leader.election.enable"] == "false"
        assert p["auto.create.topics.enable"] == "false"


def test_compose_cluster_profile_matches_the_scripts() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    env = properties((KAFKA_DIR / "cluster.env").read_text())
    assert env["COMPOSE_PROFILES"] == "cluster"
    assert env["DCR_KAFKA_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    nodes = ["kafka", "kafka-2", "kafka-3"]
    assert env["DCR_KAFKA_BOOTSTRAP_SERVERS"] == ",".join(f"{n}:9092" for n in nodes)
    assert env["KAFKA_QUORUM_VOTERS"] == ",".join(
        f"{i}@{n}:19093" for i, n in enumerate(nodes, start=1)
    )
    for i, name in enumerate(nodes, start=1):
        svc = compose["services"][name]
        assert svc["image"] == compose["services"]["kafka"]["image"]
        assert svc["environment"]["KAFKA_NODE_ID"] == str(i)
        assert svc["environment"]["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert "healthcheck" in svc
        if i > 1:
            assert svc["profiles"] == ["cluster"]
    # the scripts' cluster (kafka.sh KAFKA_NODES=3) and the Makefile name the same brokers
    script = (REPO_ROOT / "deploy" / "scripts" / "kafka.sh").read_text()
    ports = re.search(r"KAFKA_CLUSTER_PORTS:-([\d ]+)\}", script)
    assert ports is not None
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert ",".join(f"127.0.0.1:{p}" for p in ports.group(1).split()) in makefile


#: The compose services with a Kafka client: each connects as the identity of its own name.
KAFKA_CLIENTS = ("intake", "supply", "incident", "projection")


def _kafka_auth_subpath(service: dict) -> str | None:  # type: ignore[type-arg]
    """The ``kafka-auth`` volume subpath a compose service mounts (None: not mounted)."""
    mounts = [
        v
        for v in service.get("volumes", [])
        if isinstance(v, dict) and v.get("source") == "kafka-auth"
    ]
    assert len(mounts) <= 1
    if not mounts:
        return None
    assert mounts[0]["target"] == "/kafka-auth" and mounts[0]["read_only"] is True
    return str(mounts[0]["volume"]["subpath"])


def test_compose_cluster_is_secured_like_the_scripts() -> None:
    """The `cluster` profile runs the scripts' secured nodes (same properties, same identities
    added at format, same ACL table), and each process mounts only its own credential."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    env = properties((KAFKA_DIR / "cluster.env").read_text())
    assert env["DCR_NODE_SECURED"] == "true"
    assert env["DCR_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"

    # the nodes: the shared entry point rendering cluster.properties + secured.properties
    node_script = (KAFKA_DIR / "compose-node.sh").read_text()
    assert 'source "$KAFKA_DIR/secured-node.sh"' in node_script
    assert "render_node" in node_script and "scram_args" in node_script
    kafka_sh = (REPO_ROOT / "deploy" / "scripts" / "kafka.sh").read_text()
    assert "secured-node.sh" in kafka_sh and "render_node" in kafka_sh
    san = re.search(r"subjectAltName=([^\\]+)", (SCRIPTS / "kafka-secrets.sh").read_text())
    assert san is not None
    for name in ("kafka", "kafka-2", "kafka-3"):
        node = services[name]
        assert node["entrypoint"] == ["bash", "/dcr/kafka/compose-node.sh"]
        assert "./deploy/kafka:/dcr/kafka:ro" in node["volumes"]
        assert _kafka_auth_subpath(node) == "broker"
        assert node["environment"]["DCR_NODE_HOST"] == name
        assert f"DNS:{name}" in san.group(1)  # the certificate names the advertised host
        assert node["depends_on"]["kafka-secrets"]["condition"] == (
            "service_completed_successfully"
        )
    # the nodes advertise and vote on the ports cluster.env's clients and voters name
    assert "DCR_NODE_PORT:-9092" in node_script and "DCR_NODE_CONTROLLER_PORT:-19093" in node_script

    # one generator of the identities: kafka-secrets.sh, laid out per identity
    job = services["kafka-secrets"]
    assert job["command"][:5] == [
        "bash", "deploy/scripts/kafka-secrets.sh", "/kafka-auth/all", "--layout", "/kafka-auth"
    ]  # fmt: skip
    identities = re.search(
        r"KAFKA_IDENTITIES=\(([^)]*)\)", (KAFKA_DIR / "secured-node.sh").read_text()
    )
    assert identities is not None
    assert tuple(identities.group(1).split()) == (ADMIN, *SERVICES) == KAFKA_IDENTITIES
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "deploy/scripts/kafka-secrets.sh" in dockerfile
    assert "deploy/kafka/secured-node.sh" in dockerfile

    # each Kafka client as its own identity, seeing only its own credential
    assert set(KAFKA_CLIENTS) == set(SERVICES)
    for name in KAFKA_CLIENTS:
        svc = services[name]
        assert svc["environment"]["DCR_KAFKA_USERNAME"] == name
        assert _kafka_auth_subpath(svc) == name
        assert svc["environment"]["DCR_KAFKA_PASSWORD_FILE"] == "/kafka-auth/password"
        assert svc["environment"]["DCR_KAFKA_CA_FILE"] == "/kafka-auth/ca.pem"
    for name in ("public", "frontdesk"):  # no Kafka client: no credential
        assert services[name]["environment"]["DCR_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
        assert _kafka_auth_subpath(services[name]) is None
    # topics and ACLs as admin, with the project's own modules (as kafka.sh start)
    for name, module in (
        ("init", "shared.kafka.admin ensure"),
        ("kafka-acls", "shared.kafka.acls"),
    ):
        svc = services[name]
        assert svc["environment"]["DCR_KAFKA_USERNAME"] == ADMIN
        assert _kafka_auth_subpath(svc) == ADMIN
        command = svc["command"]
        assert module in (" ".join(command) if isinstance(command, list) else command)
    assert services["kafka-acls"]["profiles"] == ["cluster"]
    assert services["kafka-acls"]["command"] == ["python", "-m", "shared.kafka.acls", "apply"]
    assert services["intake"]["depends_on"]["kafka-acls"] == {
        "condition": "service_completed_successfully",
        "required": False,
    }


def test_throwaway_cluster_ids_never_start_with_a_dash() -> None:
    """StorageTool reads ``-t -abc...`` as an option: a generated id must never start with '-'
    (Kafka's own rule for its random ids). 2,000 draws hit a leading '-' ~31 times otherwise."""
    ids = [new_cluster_id() for _ in range(2000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
