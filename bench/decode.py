"""``python -m bench.decode``: the cost of decoding one Kafka record, contract (pydantic) decoder
against the projection's hot-path decoder (msgspec), on the benchmark workload (issue 18).

The records are the benchmark log's (:class:`bench.workload.EventLog`: 50 rooms, every event
type in the catch-up benchmark's mix, 1 % duplicates), encoded as the ingest services publish
them. Each decoder decodes all of them ``--repeat`` times in this one process, alternately
(pydantic, msgspec, pydantic, ...), so load from other processes hits both alike. Time is this
process's CPU time (``time.process_time``: waiting for a core on a shared machine is not
counted); the figure is the best pass, the median pass is reported beside it. Measured:

- ``record``: a whole record (CloudEvents headers + JSON payload -> the contract's Envelope,
  or the hot path's Event holding the payload's Struct);
- ``record/msgspec-batch``: the same through one per-batch decoder (headers repeated across
  records checked once), what :func:`services.projection.domain.decode_batch` pays per record;
- ``payload``: the payload alone (JSON -> validated payload model, or its Struct);
- ``record/hybrid``: for comparison, the contract's Envelope with a msgspec-parsed ``ce_id``
  and pydantic-core parsing the payload.

Before timing, both decoders' events are checked equal record by record. The result (with the
machine and its load) is written to ``--out`` (default bench/results/issue18/decode.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.env import bench_city
from bench.machine import load, machine
from bench.workload import EventLog, encode
from shared.events import envelope, fast_decode
from shared.events.catalogue import CATALOGUE
from shared.settings import REPO_ROOT

OUT = REPO_ROOT / "bench" / "results" / "issue18" / "decode.json"
Record = tuple[list[tuple[str, bytes]], bytes]


def records(events: int, facilities: int = 50) -> list[Record]:
    """The benchmark log's records (headers, value), fixed seed and end (repeatable)."""
    end = datetime(2026, 11, 1, tzinfo=UTC)
    log = EventLog(bench_city(facilities), n=events, end=end, seed=1)
    return [(headers, value) for _, _, value, headers in (encode(e) for e in log)]


def _pass(decoder: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> float:
    """Microseconds per item of one pass of ``decoder`` over ``items``."""
    start = time.process_time()
    for item in items:
        decoder(*item)
    return (time.process_time() - start) / len(items) * 1e6


#: The hot path's codec with the contract's payload parser (measured, not used).
_HYBRID = envelope.Codec(
    envelope.parse_payload, fast_decode.event_id, envelope.Envelope.model_construct
)


def _hybrid(headers: list[tuple[str, bytes]], value: bytes) -> envelope.Envelope:
    return envelope.decode_with(headers, value, _HYBRID)


def measure(recs: Sequence[Record], repeat: int) -> dict[str, Any]:
    """Microseconds per record of each decoder (best and median of ``repeat`` passes)."""
    for headers, value in recs:
        contract = fast_decode.event_of(envelope.decode(headers, value))
        if fast_decode.decode(headers, value) != contract:
            raise AssertionError("the two decoders disagree on a benchmark record")
    payloads = [
        (CATALOGUE[dict(h)["ce_type"].decode()], int(dict(h)["ce_schemaversion"]), v)
        for h, v in recs
    ]
    work: dict[str, tuple[Callable[..., Any], Sequence[tuple[Any, ...]]]] = {
        "record/pydantic": (envelope.decode, recs),
        "record/msgspec": (fast_decode.decode, recs),
        # the projection's per-batch decoder (headers repeated across records checked once)
        "record/msgspec-batch": (fast_decode.batch_decoder(), recs),
        # for comparison: the hot path's envelope parts with pydantic-core parsing the payload
        "record/hybrid": (_hybrid, recs),
        "payload/pydantic": (envelope.parse_payload, payloads),
        "payload/msgspec": (fast_decode.parse_payload_fast, payloads),
    }
    passes: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(repeat):
        for name, (decoder, items) in work.items():
            passes[name].append(_pass(decoder, items))
    out: dict[str, Any] = {}
    for name, us in passes.items():
        out[name] = {
            "best_us": round(min(us), 2),
            "median_us": round(statistics.median(us), 2),
            "passes_us": [round(x, 2) for x in us],
        }
    for what in ("record", "payload"):
        slow, fast = out[f"{what}/pydantic"]["best_us"], out[f"{what}/msgspec"]["best_us"]
        out[f"{what}/speedup"] = round(slow / fast, 2)
        out[f"{what}/saved_us"] = round(slow - fast, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    recs = records(args.events)
    mix = Counter(dict(h)["ce_type"].decode() for h, _ in recs)
    load_before = load()
    results = measure(recs, args.repeat)
    doc = {
        "command": "python -m bench.decode " + " ".join(argv or sys.argv[1:]),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": len(recs),
        "mix": dict(mix.most_common()),
        "repeat": args.repeat,
        "load_before": load_before,
        "load_after": load(),
        "machine": machine(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for name in ("record", "payload"):
        slow, fast = results[f"{name}/pydantic"], results[f"{name}/msgspec"]
        print(
            f"{name:8} pydantic {slow['best_us']:6.2f} us  msgspec {fast['best_us']:6.2f} us"
            f"  ({results[f'{name}/speedup']}x; medians {slow['median_us']} / "
            f"{fast['median_us']} us)"
        )
    for name in ("record/msgspec-batch", "record/hybrid"):
        r = results[name]
        print(f"{name:20} {r['best_us']:6.2f} us (median {r['median_us']} us)")
    print(f"load {load_before} -> {doc['load_after']}; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
