"""Who may do what on a secured Kafka cluster: the ACL table of every service identity, and the
one place that creates those ACLs (used by deploy/scripts/kafka.sh and by the tests).

The brokers run the standard authorizer with ``allow.everyone.if.no.acl.found=false``
(deploy/kafka/secured.properties): anything not granted here is refused. ``admin`` is the super
user (topics, ACLs, credentials; the brokers among themselves) and gets no ACL.

Invariants of :func:`grants` (tests/unit/test_kafka_acls.py):

- a service writes only the topics whose events it produces (intake: visits and corrections;
  supply: supplies; incident: incidents and drug alerts; projection: only the dead letters);
- it reads only what it consumes (incident: incidents for the alert rule, alerts for the
  notifier; projection: every event topic and the dead letters, for reconcile) and joins only
  its own consumer groups;
- every name is the physical name (``prefix`` + catalogue name), LITERAL: a test session sharing
  nothing grants exactly its own topics.

Usage: ``python -m shared.kafka.acls apply`` (as admin: ``DCR_KAFKA_USERNAME=admin``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.admin import CreateAclsRequest

from shared.kafka.security import Target, target_kwargs
from shared.kafka.topics import (
    ALERTS,
    CORRECTIONS,
    DEADLETTER,
    EVENT_TOPICS,
    INCIDENTS,
    SUPPLIES,
    VISITS,
)
from shared.settings import KafkaSettings

#: The super user of the cluster (no ACLs needed; ``super.users``).
ADMIN = "admin"
#: One Kafka identity per service process. The incident service's notifier and drug alert
#: worker run in its process and use its identity.
SERVICES = ("intake", "supply", "incident", "projection")
#: Consumer groups per identity: the defaults of services/incident/settings.py
#: (DCR_ALERTS_CONSUMER_GROUP, DCR_NOTIFY_CONSUMER_GROUP) and services/projection/settings.py
#: (DCR_PROJECTION_GROUP_ID); a changed group setting needs the same change here.
DEFAULT_GROUPS: Mapping[str, tuple[str, ...]] = {
    "incident": ("dcr-incident-alerts", "dcr-notifier"),
    "projection": ("dcr-projection",),
}
WRITES: Mapping[str, tuple[str, ...]] = {
    "intake": (VISITS, CORRECTIONS),
    "supply": (SUPPLIES,),
    "incident": (INCIDENTS, ALERTS),
    "projection": (DEADLETTER,),
}
READS: Mapping[str, tuple[str, ...]] = {
    "incident": (INCIDENTS, ALERTS),
    "projection": (*EVENT_TOPICS, DEADLETTER),
}
#: Topic configurations an identity may read and change: the projection's retention job sets
#: retention.ms (services/projection/retention.py).
CONFIGURES: Mapping[str, tuple[str, ...]] = {"projection": (*EVENT_TOPICS, DEADLETTER)}


class Resource(IntEnum):
    """Kafka's ResourceType codes."""

    TOPIC = 2
    GROUP = 3


class Operation(IntEnum):
    """Kafka's AclOperation codes (the ones granted here)."""

    READ = 3
    WRITE = 4
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11


LITERAL = 3  # PatternType
ALLOW = 3  # AclPermissionType


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """ALLOW ``username`` to ``operation`` on the resource named exactly ``name``."""

    username: str
    resource: Resource
    name: str
    operation: Operation

    @property
    def principal(self) -> str:
        return f"User:{self.username}"


def grants(prefix: str = "", groups: Mapping[str, tuple[str, ...]] = DEFAULT_GROUPS) -> list[Grant]:
    """Every ACL of the service identities for topics and groups named ``prefix`` + name."""
    out: set[Grant] = set()

    def add(who: str, resource: Resource, names: Iterable[str], *ops: Operation) -> None:
        out.update(Grant(who, resource, prefix + n, op) for n in names for op in ops)

    for who in SERVICES:
        add(who, Resource.TOPIC, WRITES.get(who, ()), Operation.WRITE, Operation.DESCRIBE)
        add(who, Resource.TOPIC, READS.get(who, ()), Operation.READ, Operation.DESCRIBE)
        add(
            who,
            Resource.TOPIC,
            CONFIGURES.get(who, ()),
            Operation.DESCRIBE_CONFIGS,
            Operation.ALTER_CONFIGS,
        )
        add(who, Resource.GROUP, groups.get(who, ()), Operation.READ, Operation.DESCRIBE)
    return sorted(out)


async def create_acls(target: Target, wanted: Iterable[Grant]) -> int:
    """Create every grant (as an identity allowed to: admin); return how many were sent.
    Creating an ACL that exists is a no-op; a refusal raises KafkaError naming the grant."""
    admin = AIOKafkaAdminClient(**target_kwargs(target), request_timeout_ms=10_000)
    await admin.start()
    sent = 0
    try:
        for g in wanted:
            request = CreateAclsRequest(
                int(g.resource), g.name, LITERAL, g.principal, "*", int(g.operation), ALLOW
            )
            response = await admin._send_request(request)
            for code, message in response.creation_responses:
                if code != 0:
                    raise KafkaError(f"ACL {g} refused: error {code} {message or ''}".strip())
            sent += 1
        return sent
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcr-kafka-acls", description=__doc__)
    parser.add_argument("command", choices=["apply", "show"])
    args = parser.parse_args(argv)
    settings = KafkaSettings()
    table = grants(settings.topic_prefix)
    if args.command == "show":
        for g in table:
            print(f"{g.principal:18} {g.operation.name:17} {g.resource.name.lower()} {g.name}")
        return 0
    count = asyncio.run(create_acls(settings, table))
    print(f"ACLs in place: {count} for {', '.join(SERVICES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
