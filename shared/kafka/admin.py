"""Broker readiness and explicit topic creation.

Ready means a metadata request succeeds (not merely an open port). Topics are created with the
configured partition count and unlimited retention: the event log is the system of record and
read models are rebuilt from it.

Usage: ``python -m shared.kafka.admin wait|ensure [--timeout SECONDS]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from shared.kafka.security import Target, target_kwargs, target_name
from shared.kafka.topics import ALL_TOPICS
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

#: Unlimited retention by time and size: the log is the system of record.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}


def min_insync_replicas(replication: int) -> int:
    """In-sync copies an acks=all write needs: all but one (2 of 3), at least 1.

    Invariant: with replication >= 2, an acknowledged event is on at least two brokers, and
    losing any one broker neither loses it nor stops writes; losing two refuses writes."""
    return max(1, replication - 1)


def topic_config(replication: int) -> dict[str, str]:
    return {**TOPIC_CONFIG, "min.insync.replicas": str(min_insync_replicas(replication))}


async def wait_until_ready(bootstrap: Target, timeout: float, brokers: int = 1) -> None:
    """Poll until a metadata request succeeds and lists at least ``brokers`` brokers (a cluster
    is ready for topics with N replicas once N brokers registered); raise TimeoutError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | str | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(**target_kwargs(bootstrap), request_timeout_ms=3000)
        try:
            await admin.start()
            described = await admin.describe_cluster()
            if len(described["brokers"]) >= brokers:
                return
            last_error = f"{len(described['brokers'])} of {brokers} brokers registered"
        except (KafkaError, OSError) as exc:
            last_error = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
    raise TimeoutError(
        f"Kafka at {target_name(bootstrap)} not ready after {timeout}s: {last_error!r}"
    )


async def ensure_topics(
    bootstrap: Target, partitions: int, replication: int = 1, prefix: str = ""
) -> list[str]:
    """Create every catalogue topic that does not exist yet; return the names created.

    Existing topics are left alone (safe to run twice); a topic with fewer partitions than
    configured is reported, never silently shrunk or grown (that would re-key facilities).
    """
    admin = AIOKafkaAdminClient(**target_kwargs(bootstrap))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [prefix + t for t in ALL_TOPICS if prefix + t not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        t,
                        num_partitions=partitions,
                        replication_factor=replication,
                        topic_configs=topic_config(replication),
                    )
                    for t in missing
                ]
            )
            # The broker answers per topic (e.g. INVALID_REPLICATION_FACTOR with too few
            # brokers); aiokafka does not raise for those. 36: created meanwhile by another.
            failed = [e for e in response.topic_errors if e[1] not in (0, 36)]
            if failed:
                raise KafkaError(f"topics not created: {failed}")
        return missing
    finally:
        await admin.close()


async def partitions_of(target: Target, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, in the order given and by partition number; a topic that
    does not exist has none.

    One metadata request for every topic through the public admin API (a consumer's own metadata
    covers only what it subscribed to or was assigned; asking for all topics never auto-creates
    one)."""
    admin = AIOKafkaAdminClient(**target_kwargs(target))
    await admin.start()
    try:
        described = await admin.describe_topics(None)
    finally:
        await admin.close()
    found = {t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described}
    return [TopicPartition(t, part) for t in topics for part in found.get(t, ())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcr-topics", description=__doc__)
    parser.add_argument("command", choices=["wait", "ensure"])
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = KafkaSettings()
    try:
        asyncio.run(wait_until_ready(settings, args.timeout, brokers=settings.replication_factor))
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.command == "ensure":
        created = asyncio.run(
            ensure_topics(
                settings,
                settings.partitions,
                replication=settings.replication_factor,
                prefix=settings.topic_prefix,
            )
        )
        print(f"topics created: {', '.join(created) or 'none (all exist)'}")
    else:
        print(f"Kafka ready at {settings.bootstrap_servers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
