"""``python -m bench.prepare``: the projector's Python work per record, alone (issue 18).

What a catch-up batch costs the projection's single event loop before its transaction: decode,
drop duplicates, project, and build the statements' arguments (the projector's own
``_prepare``: :func:`services.projection.domain.decode_batch`, the claim's rows, the room sums,
the visit records), on the catch-up benchmark's records (:class:`bench.workload.EventLog`, 50
rooms) as aiokafka hands them over (``ConsumerRecord`` with its header list), in batches of
``--batch`` records (the catch-up's are ~42,000). No broker, no database: the figure is this
process's CPU time (``time.process_time``) per record, best and median of ``--repeat`` passes
over the whole log, so it compares two versions of the code far more steadily than a catch-up
replay, whose rate also moves with PostgreSQL and the machine's other load (two replays of one
commit differed by 20 % on this machine: bench/NOTES.md, session of 2026-11-30 18:21-).

Not measured here: aiokafka's fetching and record objects, the transaction, releasing the
batch. Writes ``--out`` (JSON with the machine and its load) when given.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from aiokafka.structs import ConsumerRecord, TopicPartition

from bench.env import bench_city
from bench.machine import load, machine
from bench.workload import EventLog, encode
from services.projection import gc_policy
from services.projection.consumer import Projector
from shared.settings import KafkaSettings


def consumer_records(events: int, facilities: int = 50) -> list[ConsumerRecord[bytes, bytes]]:
    """The benchmark log's records as aiokafka's consumer returns them (one partition per
    logical topic, offsets in log order), fixed seed and end (repeatable)."""
    end = datetime(2026, 11, 1, tzinfo=UTC)
    log = EventLog(bench_city(facilities), n=events, end=end, seed=1)
    offsets: dict[str, int] = {}
    out: list[ConsumerRecord[bytes, bytes]] = []
    for topic, key, value, headers in (encode(e) for e in log):
        offset = offsets[topic] = offsets.get(topic, -1) + 1
        out.append(
            ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value), headers)
        )
    return out


def batches(
    records: list[ConsumerRecord[bytes, bytes]], size: int
) -> list[dict[TopicPartition, list[Any]]]:
    """``records`` cut into batches of ``size``, each grouped per partition in log order."""
    out: list[dict[TopicPartition, list[Any]]] = []
    for i in range(0, len(records), size):
        by_tp: dict[TopicPartition, list[Any]] = {}
        for r in records[i : i + size]:
            by_tp.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        out.append(by_tp)
    return out


def one_pass(work: list[dict[TopicPartition, list[Any]]], records: int) -> float:
    """CPU microseconds per record of preparing every batch of ``work`` once, by a new
    projector (as a catch-up starts), with the garbage collector as the service runs it."""
    projector = Projector(
        pool=cast(Any, None),
        city=bench_city(50),
        group="bench-prepare",
        kafka=KafkaSettings(),
        deadletters=cast(Any, None),
    )
    kept = []
    start = time.process_time()
    for by_tp in work:
        kept.append(projector._prepare(by_tp))
        if len(kept) > 2:  # the loop holds the batch in flight and the next one
            kept.pop(0)
    elapsed = time.process_time() - start
    kept.clear()
    gc.collect()
    return elapsed / records * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prepare", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=42_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    records = consumer_records(args.events)
    work = batches(records, args.batch)
    gc_policy.tune_gc()  # the service's collector settings; the log leaves the collector's view
    load_before = load()
    passes = [round(one_pass(work, len(records)), 2) for _ in range(args.repeat)]
    result = {
        "records": len(records),
        "batch": args.batch,
        "best_us_per_record": min(passes),
        "median_us_per_record": statistics.median(passes),
        "passes_us": passes,
        "load_before": load_before,
        "load_after": load(),
        "machine": machine(),
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
