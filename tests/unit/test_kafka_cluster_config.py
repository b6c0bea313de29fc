"""The 3-node Kafka cluster's settings: every copy of the configuration says the same thing
(replication factor 3, min.insync.replicas=2, unclean leader election off), and a cluster's
bootstrap list reaches every client."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from shared.kafka.admin import min_insync_replicas, topic_config
from shared.settings import REPO_ROOT, KafkaSettings
from tests.faults.throwaway import ThrowawayKafkaCluster

KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"


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
