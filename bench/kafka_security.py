"""``python -m bench.kafka_security``: what the 3-node cluster and its security cost ingest and
the projection's catch-up, beside the single development node, in one run (issue 16).

For every target (``--single`` PLAINTEXT node, ``--cluster`` secured 3-node cluster, credentials
from .state/auth/kafka/), in isolated environments of its own (:mod:`bench.env`: topics
``bench-ksec-*``, a database, removed after; on the cluster the ACLs of shared/kafka/acls.py
for those topics, and every service process runs with its own identity):

- ``publish_at_fixed_rate``: the services' producer (idempotent, acks=all, no linger) sending
  one visit record every 1/``--rate`` s for ``--seconds`` s, each send awaited: p50/p99 from
  the scheduled instant (the Kafka part of an ingest request's latency);
- ``http_ingest_at_rate``: ``POST /v1/visits`` to an intake process at each of ``--http-rates``
  req/s (default: ``--rate``; a lower one shows the targets' difference when the machine cannot
  give intake the CPU for 200/s) for
  ``--seconds`` s, open loop (each request due at its instant whatever the earlier ones do;
  latency from that intended send time; failures and timeouts counted, never fatal;
  :func:`bench.ingest.fixed_rate`);
- ``catchup_raw_consumer``: ``--events`` events of the benchmark workload pre-loaded, then read
  from the beginning by a bare consumer that only counts (the ceiling on that target);
- ``projection_catchup``: a projection process applying the same log into PostgreSQL
  (:func:`bench.catchup.projection_catchup`, verified against the dedup table).

Results are merged into ``bench/results/kafka_security.json`` under ``<target>-<protocol>``.
The machine's load average is recorded with every result. ``make bench-kafka`` starts the
cluster of this checkout on its own ports beside the single node, runs this, stops the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.catchup import load_log, projection_catchup
from bench.env import isolated
from bench.ingest import intake_at_rate
from bench.kafka_tools import raw_consume, raw_produce
from bench.machine import load, machine
from bench.workload import EventLog, encode
from harness.isolation import kafka_env
from shared.kafka.acls import create_acls, grants
from shared.kafka.topics import VISITS
from shared.settings import REPO_ROOT, KafkaSettings

RESULTS = REPO_ROOT / "bench" / "results" / "issue16" / "kafka_security.json"
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


def identity(target: KafkaSettings, service: str) -> dict[str, str]:
    """The ``DCR_KAFKA_*`` of ``service``'s process on ``target``: on a secured cluster its own
    credential (beside the admin's password file); on a PLAINTEXT node nothing to add."""
    if target.security_protocol == "PLAINTEXT":
        return {}
    assert target.password_file is not None  # the settings validator requires it
    own = target.model_copy(
        update={
            "username": service,
            "password_file": target.password_file.parent / f"{service}.password",
        }
    )
    return kafka_env(own)


async def measure(
    target: KafkaSettings,
    *,
    rate: float,
    http_rates: list[float],
    seconds: float,
    events: int,
    facilities: int,
) -> dict[str, Any]:
    secured = target.security_protocol != "PLAINTEXT"
    out: dict[str, Any] = {}
    async with isolated("ksec-ingest", facilities, kafka=target) as env:
        if secured:
            await create_acls(target, grants(env.prefix))
        n = int(rate * seconds)
        records = [encode(e) for e in EventLog(env.city, n=n + 50, days=1, seed=7)]
        print(f"bench: publish {n} records at {rate:.0f}/s", file=sys.stderr)
        out["publish_at_fixed_rate"] = await raw_produce(
            target, env.topic(VISITS), records[:n], concurrency=1, rate=rate
        )
        out["http_ingest_at_rate"] = {}
        for http_rate in http_rates:
            print(f"bench: HTTP ingest at {http_rate:g} req/s for {seconds:g} s", file=sys.stderr)
            out["http_ingest_at_rate"][f"{http_rate:g}"] = await intake_at_rate(
                env, http_rate, seconds, identity(target, "intake")
            ) | {"load_average": load()}
    async with isolated("ksec-catchup", facilities, kafka=target) as env:
        if secured:
            await create_acls(target, grants(env.prefix))
        log, ends, load_s = await load_log(env, events, days=30)
        consumed = await raw_consume(target, env.prefix, ends, 10_000)
        out["preload"] = {"records": sum(ends.values()), "seconds": round(load_s, 2)}
        out["catchup_raw_consumer"] = {
            "records": consumed.records,
            "seconds": round(consumed.seconds, 2),
            "records_per_s": round(consumed.rate),
        }
        print("bench: projection catch-up", file=sys.stderr)
        proj = await projection_catchup(
            env,
            dsn=env.dsn,
            group="dcr-projection",
            instances=1,
            ends=ends,
            expected_unique=log.unique,
            extra_env=identity(target, "projection"),
            timeout_s=1800,
        )
        proj.pop("progress")
        out["projection_catchup"] = proj
    out["load_average"] = load()
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    targets: list[tuple[str, KafkaSettings]] = []
    if args.single:
        targets.append(("single-PLAINTEXT", KafkaSettings(bootstrap_servers=args.single)))
    if args.cluster:
        admin = cluster_admin(args.cluster, args.cluster_protocol)
        targets.append((f"cluster3-{args.cluster_protocol}", admin))
    out: dict[str, Any] = {}
    for label, target in targets:
        print(f"bench: {label}", file=sys.stderr)
        out[label] = await measure(
            target,
            rate=args.rate,
            http_rates=args.http_rates or [args.rate],
            seconds=args.seconds,
            events=args.events,
            facilities=args.facilities,
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
    ap.add_argument(
        "--http-rates",
        type=lambda text: [float(x) for x in text.split(",") if x.strip()],
        default=None,
        help="comma-separated HTTP ingest rates, req/s (default: --rate)",
    )
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--facilities", type=int, default=50, help="rooms in the benchmark city")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    results = asyncio.run(run(args))
    doc: dict[str, Any] = json.loads(args.results.read_text()) if args.results.exists() else {}
    doc.setdefault("targets", {}).update(results)
    doc["machine"] = machine()
    doc["params"] = {
        "rate_per_s": args.rate,
        "http_rates_per_s": args.http_rates or [args.rate],
        "seconds": args.seconds,
        "events": args.events,
        "facilities": args.facilities,
        "command": "python -m bench.kafka_security " + " ".join(argv or sys.argv[1:]),
    }
    args.results.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    for label, r in results.items():
        p = r["publish_at_fixed_rate"]
        c = r["catchup_raw_consumer"]
        j = r["projection_catchup"]
        print(
            f"{label:24} publish p99 {p['p99_ms']} ms; catch-up raw {c['records_per_s']}/s, "
            f"projection {j['events_per_s']}/s (verified {j['verified']}); "
            f"load {r['load_average']}"
        )
        for http_rate, h in r["http_ingest_at_rate"].items():
            print(
                f"{'':24} HTTP ingest at {http_rate}/s: p50 {h['p50_ms']} ms p99 {h['p99_ms']} "
                f"ms (inside intake p99 <= {h['server_http'].get('p99_ms_at_most')} ms), "
                f"{h['throughput_per_s']}/s answered 202, errors {h['errors']} "
                f"{h['failures']}; intake {h['service_cores']} cores"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
