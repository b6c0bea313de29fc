"""Bare aiokafka clients for the benchmarks: the pre-load (setup), end offsets, and the two
baselines (a consumer that only counts records, a producer that awaits each send)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.stats import summarise
from bench.workload import Encoded, encode
from shared.events.envelope import Envelope
from shared.kafka.admin import partitions_of
from shared.kafka.security import Target, target_kwargs
from shared.kafka.topics import EVENT_TOPICS

Offsets = dict[tuple[str, int], int]


async def preload(bootstrap: Target, prefix: str, events: Iterable[Envelope]) -> tuple[int, float]:
    """Publish every event (large batches, linger), waiting for all acks; (records, seconds)."""
    producer = AIOKafkaProducer(
        **target_kwargs(bootstrap),
        acks="all",
        enable_idempotence=True,
        linger_ms=50,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    n = 0
    try:
        futures: list[asyncio.Future[object]] = []
        for env in events:
            topic, key, value, headers = encode(env)
            futures.append(await producer.send(prefix + topic, value, key=key, headers=headers))
            n += 1
            if len(futures) >= 20_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n, time.perf_counter() - started


async def end_offsets(bootstrap: Target, prefix: str) -> Offsets:
    """End offset of every partition of the event topics under ``prefix``."""
    consumer = AIOKafkaConsumer(**target_kwargs(bootstrap), group_id=None)
    await consumer.start()
    try:
        tps = await partitions_of(bootstrap, [prefix + t for t in EVENT_TOPICS])
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class ConsumeResult:
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


#: The bare consumer "tuned": fetch sizes of the projection's consumer (runner.make_consumer).
TUNED_PARTITION_FETCH_BYTES = 4 * 1024 * 1024
TUNED_MAX_RECORDS = 50_000


async def raw_consume(
    bootstrap: Target,
    prefix: str,
    ends: Offsets,
    max_records: int,
    partition_fetch_bytes: int = 1024 * 1024,
) -> ConsumeResult:
    """Read every event partition from the beginning to ``ends`` with a bare consumer that only
    counts records. Plain: aiokafka's settings but 1 MiB per partition and ``max_records``;
    tuned: the projection's fetch sizes (:data:`TUNED_PARTITION_FETCH_BYTES`)."""
    consumer = AIOKafkaConsumer(
        **target_kwargs(bootstrap),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=partition_fetch_bytes,
        fetch_max_bytes=max(4 * partition_fetch_bytes, 50 * 1024 * 1024),
    )
    await consumer.start()
    try:
        tps = await partitions_of(bootstrap, [prefix + t for t in EVENT_TOPICS])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        want = {tp: ends.get((tp.topic, tp.partition), 0) for tp in tps}
        remaining = {tp for tp, end in want.items() if end > 0}
        n = 0
        started = time.perf_counter()
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            for tp, records in batch.items():
                n += len(records)
                if records and records[-1].offset + 1 >= want[tp]:
                    remaining.discard(tp)
        return ConsumeResult(n, time.perf_counter() - started)
    finally:
        await consumer.stop()


async def raw_produce(
    bootstrap: Target,
    topic: str,
    messages: list[Encoded],
    *,
    concurrency: int,
    rate: float | None = None,
) -> dict[str, float | int]:
    """The ingest baseline: an idempotent acks=all producer configured like the services'
    (FastStream's defaults: no linger), each send awaited by its caller (``concurrency`` callers
    in a closed loop, or one send every 1/``rate`` s in an open loop); throughput and latency."""
    producer = AIOKafkaProducer(**target_kwargs(bootstrap), acks="all", enable_idempotence=True)
    await producer.start()
    latencies: list[float] = []
    try:
        for _, key, value, headers in messages[:50]:  # warm-up (connections, metadata)
            await producer.send_and_wait(topic, value, key=key, headers=headers)

        async def one(i: int, scheduled: float | None = None) -> None:
            _, key, value, headers = messages[i % len(messages)]
            t0 = scheduled if scheduled is not None else time.perf_counter()
            await producer.send_and_wait(topic, value, key=key, headers=headers)
            latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        if rate is None:
            counter = iter(range(len(messages)))

            async def worker() -> None:
                for i in counter:
                    await one(i)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            await open_loop(len(messages), rate, one)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"requests": len(latencies), "seconds": round(seconds, 3)} | summarise(
        latencies, seconds
    )


#: One call of an open loop: (index, scheduled perf_counter instant).
OneCall = Callable[[int, float], Coroutine[Any, Any, None]]


async def open_loop(n: int, rate: float, one: OneCall, *, max_in_flight: int = 10_000) -> None:
    """Start call ``i`` at ``start + i / rate`` whatever the earlier ones are doing (no
    coordinated omission: latencies are measured from the scheduled instant)."""
    start = time.perf_counter() + 0.05
    tasks: set[asyncio.Task[None]] = set()
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing of the open loop
        task = asyncio.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if len(tasks) > max_in_flight:
            raise RuntimeError("the system under test fell far behind the offered rate")
    if tasks:
        await asyncio.gather(*tasks)
