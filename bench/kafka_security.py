"""``python -m bench.kafka_security``: what the 3-node cluster and its security cost the
Kafka side of ingest and of the projection's catch-up, beside the single development node, in
one run (issue 16).

For every target (``--single`` PLAINTEXT node, ``--cluster`` secured 3-node cluster as admin,
credentials from .state/auth/kafka/), on topics of its own (``bench-kafka-<run>.*``, removed
after):

- ``publish``: the services' producer (idempotent, acks=all, no linger) sending one visit
  record every 1/``--rate`` s for ``--seconds`` s, each send awaited: p50/p99 from the
  scheduled instant (the Kafka part of an ingest request's latency);
- ``catchup``: ``--events`` events of the benchmark workload pre-loaded, then read from the
  beginning by a consumer configured like the projection's that only counts (the ceiling of
  the projection's catch-up rate on that target).

Results are merged into ``bench/results/kafka_security.json`` under ``<target>-<protocol>``
(run once with the cluster on SASL_SSL and once on SASL_PLAINTEXT for the cost of TLS).
The machine's load average is recorded with every result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.env import bench_city
from bench.kafka_tools import end_offsets, preload, raw_consume, raw_produce
from bench.machine import load, machine
from bench.workload import EventLog, encode
from harness.isolation import delete_topics
from shared.kafka.admin import ensure_topics
from shared.kafka.security import Target
from shared.kafka.topics import VISITS
from shared.settings import REPO_ROOT, KafkaSettings

RESULTS = REPO_ROOT / "bench" / "results" / "kafka_security.json"
SECRETS = REPO_ROOT / ".state" / "auth" / "kafka"


def cluster_admin(bootstrap: str, protocol: str, secrets: Path = SECRETS) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        replication_factor=3,
        security_protocol=protocol,
        username="admin",
        password_file=secrets / "admin.password",
        ca_file=secrets / "tls" / "ca.pem" if protocol == "SASL_SSL" else None,
    )


async def measure(
    target: Target, replication: int, *, rate: float, seconds: float, events: int
) -> dict[str, Any]:
    prefix = f"bench-kafka-{uuid.uuid4().hex[:8]}."
    city = bench_city(50)
    await ensure_topics(target, 6, replication=replication, prefix=prefix)
    try:
        n = int(rate * seconds)
        records = [encode(e) for e in EventLog(city, n=n + 50, days=1, seed=7)]
        print(f"bench: publish {n} records at {rate:.0f}/s", file=sys.stderr)
        publish = await raw_produce(target, prefix + VISITS, records[:n], concurrency=1, rate=rate)
        await delete_topics(target, prefix)
        prefix = prefix.replace("bench-kafka-", "bench-kafka-c-")
        await ensure_topics(target, 6, replication=replication, prefix=prefix)
        print(f"bench: pre-load {events} events, then catch up", file=sys.stderr)
        loaded, load_s = await preload(target, prefix, EventLog(city, n=events, days=30, seed=1))
        ends = await end_offsets(target, prefix)
        consumed = await raw_consume(target, prefix, ends, 10_000)
        return {
            "publish_at_fixed_rate": publish,
            "preload": {"records": loaded, "seconds": round(load_s, 2)},
            "catchup_raw_consumer": {
                "records": consumed.records,
                "seconds": round(consumed.seconds, 2),
                "records_per_s": round(consumed.rate),
            },
            "load_average": load(),
        }
    finally:
        await delete_topics(target, prefix)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    targets: list[tuple[str, Target, int]] = []
    if args.single:
        targets.append(("single-PLAINTEXT", args.single, 1))
    if args.cluster:
        admin = cluster_admin(args.cluster, args.cluster_protocol)
        targets.append((f"cluster3-{args.cluster_protocol}", admin, 3))
    out: dict[str, Any] = {}
    for label, target, replication in targets:
        print(f"bench: {label}", file=sys.stderr)
        out[label] = await measure(
            target, replication, rate=args.rate, seconds=args.seconds, events=args.events
        )
        out[label]["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.kafka_security", description=__doc__)
    ap.add_argument("--single", default="127.0.0.1:9092", help="PLAINTEXT node ('' to skip)")
    ap.add_argument("--cluster", default="127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292")
    ap.add_argument(
        "--cluster-protocol", choices=["SASL_SSL", "SASL_PLAINTEXT"], default="SASL_SSL"
    )
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    results = asyncio.run(run(args))
    doc: dict[str, Any] = json.loads(args.results.read_text()) if args.results.exists() else {}
    doc.setdefault("targets", {}).update(results)
    doc["machine"] = machine()
    doc["params"] = {"rate_per_s": args.rate, "seconds": args.seconds, "events": args.events}
    args.results.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    for label, r in results.items():
        p = r["publish_at_fixed_rate"]
        c = r["catchup_raw_consumer"]
        print(
            f"{label:28} publish p50 {p.get('p50_ms')} ms p99 {p.get('p99_ms')} ms; "
            f"catch-up {c['records_per_s']}/s; load {r['load_average']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
