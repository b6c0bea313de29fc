"""Rebuild the read models from the event log: ``python -m services.projection.rebuild``.

Empties every read model, the dedup table and the group's stored offsets, then replays every
partition of the event topics from its beginning up to the end offsets seen at start, through
the same code as the live service (:class:`~.consumer.Projector`), showing progress on stderr.
The result equals the live run's tables (every change is batch-independent, see
:mod:`.domain`). Offsets are stored under the live consumer group, so the service resumes exactly
where the rebuild stopped; an interrupted rebuild leaves a consistent prefix (run it again).

Refuses to run while a projection instance is running (it holds the shared side of an advisory
lock that the rebuild takes exclusively); instances started meanwhile wait for it to finish.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import asyncpg
import uvloop

from services.projection import store
from services.projection.bootstrap import ProjectionConfig
from services.projection.consumer import FigureDeferral, Projector
from services.projection.gc_policy import tune_gc
from services.projection.metrics import REBUILD_PROGRESS
from services.projection.runner import make_consumer
from services.projection.settings import ProjectionSettings
from shared.city import City
from shared.kafka.admin import partitions_of
from shared.kafka.deadletter import DeadLetter
from shared.kafka.topics import EVENT_TOPICS
from shared.progress import CommandProgress
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


class RebuildRefused(RuntimeError):
    """A projection instance (or another rebuild) is running."""


class SkippedLetters:
    """Dead-letter sink of a rebuild: the live run already dead-lettered these records, so they
    are counted, not published again."""

    def __init__(self) -> None:
        self.count = 0

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        self.count += len(letters)


class Progress:
    """The rebuild's progress on ``out`` (a rich bar on a terminal; in a log, a line every 10 %)
    and the ``dcr_projection_rebuild_progress`` gauge."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = total
        self._bar = CommandProgress(out, "rebuild", total)
        self._last_tenth = -1
        self._bar.start()

    def __call__(self, done: int) -> None:
        ratio = done / self.total if self.total else 1.0
        REBUILD_PROGRESS.set(ratio)
        self._bar.update(done, "records")
        tenth = int(ratio * 10)
        if not self._bar.live and tenth > self._last_tenth:
            self._last_tenth = tenth
            self._bar.log_line(f"rebuild {done}/{self.total} records ({ratio:.1%})")

    def finish(self) -> None:
        self._bar.stop()


async def rebuild(
    out: TextIO = sys.stderr,
    progress_factory: Callable[[int, TextIO], Progress] = Progress,
    config: ProjectionConfig | None = None,
) -> int:
    """Run a rebuild (``config``: default from the environment); return the number of records
    replayed. Raises RebuildRefused."""
    config = config or ProjectionConfig()
    settings, platform = config.settings, config.platform
    kafka, city = platform.kafka, platform.city
    lock_conn = await platform.connect()
    try:
        if not await lock_conn.fetchval(
            "SELECT pg_try_advisory_lock($1, 0)", store.REBUILD_LOCK_NS
        ):
            raise RebuildRefused(
                "a projection instance or another rebuild is running; stop "
                "the projection service first"
            )
        pool = await platform.pool(max_size=2)
        consumer = make_consumer(kafka, settings, group=False)
        try:
            await consumer.start()
            return await _replay(pool, consumer, settings, kafka, city, out, progress_factory)
        finally:
            await consumer.stop()
            await pool.close()
    finally:
        await lock_conn.close()


async def _replay(
    pool: asyncpg.Pool,
    c: Any,
    settings: ProjectionSettings,
    kafka: KafkaSettings,
    city: City,
    out: TextIO,
    progress_factory: Callable[[int, TextIO], Progress],
) -> int:
    tps = await partitions_of(kafka, [kafka.topic(t) for t in EVENT_TOPICS])
    c.assign(tps)
    begin = await c.beginning_offsets(tps)
    end = await c.end_offsets(tps)
    async with pool.acquire() as conn, conn.transaction():
        await store.reset(conn, settings.group_id, city.zone, settings.max_visit)
    skipped = SkippedLetters()
    projector = Projector(
        pool=pool,
        city=city,
        group=settings.group_id,
        kafka=kafka,
        deadletters=skipped,
        max_visit=settings.max_visit,
        figures=FigureDeferral(settings.figures_defer_min_records, settings.figures_max_delay_s),
    )
    projector.bind(c)
    await projector.assigned(tps)
    total = sum(int(end[tp]) - int(begin[tp]) for tp in tps)
    progress = progress_factory(total, out)

    def report() -> None:
        done = sum(
            max(min(projector.positions.get(tp, begin[tp]), end[tp]) - begin[tp], 0) for tp in tps
        )
        progress(done)

    report()
    await projector.run(
        asyncio.Event(),
        poll_timeout_ms=settings.poll_timeout_ms,
        max_records=max(settings.batch_max_records, 2000),
        backoff_s=settings.retry_backoff_s,
        until=end,
        on_batch=report,
    )
    report()
    progress.finish()
    if skipped.count:
        out.write(
            f"rebuild: {skipped.count} unusable record(s) skipped (already in the "
            "dead-letter topic from the live run)\n"
        )
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.projection.rebuild",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    tune_gc()
    try:
        n = uvloop.run(rebuild())
    except RebuildRefused as exc:
        print(f"rebuild refused: {exc}", file=sys.stderr)
        return 2
    took = time.monotonic() - started
    print(
        f"rebuild done: {n} records replayed in {took:.1f} s "
        f"({n / max(took, 1e-6):,.0f} records/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
