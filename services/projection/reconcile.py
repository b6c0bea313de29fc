"""Reconcile the read models with the event log: ``python -m services.projection.reconcile``.

Reads every record of the event topics, decodes it with the event contract, drops duplicates
(same CloudEvents source + id) and the records the projection dead-letters (undecodable, or
naming a facility or district the city does not have), and counts what remains per district and
local day with plain counting that shares no code with the projection (:mod:`.domain`,
:mod:`.store`). The counts are compared with ``district_daily``, ``facility_daily`` and the
applied events (``projection_events``, per type); every difference is printed.

Consistency: the read models and the projection's stored offsets are read in one REPEATABLE READ
snapshot and the topics are read up to exactly those offsets, so the comparison is exact even
while the projection runs. Records beyond them (lag) are a difference unless ``--allow-lag``;
``--wait SECONDS`` first waits until the projection has applied everything in the topics.
With ``--deadletters`` (the default) every skipped record must also be in the dead-letter topic.

Exit status: 0 no difference, 1 differences (printed), 2 could not run (Kafka or PostgreSQL).
Prints topics, counts, days and reasons only: never payload values or pseudonyms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.projection.bootstrap import ProjectionConfig
from services.projection.schema import DISTRICT_DAILY, FACILITY_DAILY
from shared.city import City
from shared.events import payloads as p
from shared.events.envelope import DecodeError, Envelope, decode
from shared.events.vocabulary import OVERDOSE_KINDS, Outcome
from shared.kafka.admin import partitions_of
from shared.kafka.security import client_kwargs
from shared.kafka.topics import DEADLETTER, EVENT_TOPICS

Key = tuple[str, date]  # (district or facility, local day)
TP = tuple[str, int]  # (physical topic, partition)

#: district_daily columns that are compared (counts and weights; not medians or means).
DISTRICT_COLUMNS: tuple[str, ...] = tuple(c.name for c in DISTRICT_DAILY if c.reconciled)
FACILITY_COLUMNS: tuple[str, ...] = tuple(c.name for c in FACILITY_DAILY if c.reconciled)
_DISTRICT_EVENTS = (p.StreetNeedlesCollected, p.DrugAlertRaised)


class Unavailable(RuntimeError):
    """Kafka or PostgreSQL could not be asked."""


@dataclass(frozen=True, slots=True)
class Rec:
    topic: str
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...]
    value: bytes | None


@dataclass
class Expected:
    """What the log says, counted naively."""

    records: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_at: list[tuple[str, int, int]] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)
    district: dict[Key, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    kg: dict[Key, dict[str, Decimal]] = field(default_factory=lambda: defaultdict(dict))
    facility: dict[Key, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


@dataclass
class Observed:
    """What the read models hold (one snapshot)."""

    offsets: dict[TP, int]
    district: dict[Key, dict[str, Any]]
    facility: dict[Key, dict[str, Any]]
    types: Counter[str]


# --- counting ---------------------------------------------------------------------------------


def unusable(env: Envelope, city: City) -> str | None:
    """Why the projection must dead-letter this decoded event (None if it is usable)."""
    _, kind, ident = env.source.split("/", 2)
    data = env.data
    if kind == "facilities":
        if ident not in city.facility_by_id:
            return "unknown facility in source"
    else:
        if not isinstance(data, _DISTRICT_EVENTS):
            return "district source on a facility event"
        if ident not in city.district_by_id:
            return "unknown district in source"
    if isinstance(data, p.StreetNeedlesCollected):
        if data.district not in city.district_by_id:
            return "unknown district in payload"
        if kind == "districts" and ident != data.district:
            return "source district differs from payload district"
    if isinstance(data, p.DrugAlertRaised):
        if data.district not in city.district_by_id:
            return "unknown district in payload"
        if data.facility_id is not None and data.facility_id not in city.facility_by_id:
            return "unknown facility in payload"
    return None


def count(
    records: Sequence[Rec], city: City, max_visit: timedelta = timedelta(hours=12)
) -> Expected:
    """The expected figures of ``records`` (any order; they are sorted by partition and offset).

    Reports voided by a ``dk.dcr.report.voided`` of the same source count as applied events but
    add nothing to the figures; a visit is completed when it ends at or after its start and at
    most ``max_visit`` later (ProjectionSettings.max_visit_hours)."""
    exp = Expected(records=len(records))
    seen: set[tuple[str, str]] = set()
    starts: dict[tuple[str, str], Envelope] = {}
    ends: dict[tuple[str, str], datetime] = {}
    zone = city.zone
    usable: list[Envelope] = []
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        try:
            env = decode(r.headers, r.value)
        except DecodeError as exc:
            exp.skipped[exc.reason.split(":")[0]] += 1
            exp.skipped_at.append((r.topic, r.partition, r.offset))
            continue
        reason = unusable(env, city)
        if reason is not None:
            exp.skipped[reason] += 1
            exp.skipped_at.append((r.topic, r.partition, r.offset))
            continue
        if (env.source, str(env.id)) in seen:
            exp.duplicates += 1
            continue
        seen.add((env.source, str(env.id)))
        exp.types[env.type] += 1
        usable.append(env)
    voided = {
        (env.source, str(env.data.target_id))
        for env in usable
        if isinstance(env.data, p.ReportVoided)
    }
    for env in usable:
        if (env.source, str(env.id)) in voided and not isinstance(env.data, p.ReportVoided):
            continue
        data = env.data
        facility = env.source.split("/")[2] if env.source.startswith("/facilities/") else None
        if isinstance(data, _DISTRICT_EVENTS):
            district = data.district
        else:
            district = city.facility_by_id[facility or ""].district
        day = env.time.astimezone(zone).date()
        d = exp.district[(district, day)]
        f = exp.facility[(facility, day)] if facility is not None else Counter[str]()
        if isinstance(data, p.VisitStarted):
            starts.setdefault((facility or "", data.visit_id), env)
        elif isinstance(data, p.VisitEnded):
            key = (facility or "", data.visit_id)
            ends[key] = min(ends.get(key, env.time), env.time)
        elif isinstance(data, p.VisitRefused):
            d["refusals"] += 1
            f["refusals"] += 1
        elif isinstance(data, p.ReferralMade):
            d["referrals"] += 1
        elif isinstance(data, p.ServiceGiven):
            d["services"] += 1
        elif isinstance(data, p.SuppliesDispensed):
            d["supplies_dispensed"] += sum(data.items.values())
        elif isinstance(data, p.SharpsReturned | p.StreetNeedlesCollected):
            prefix = "sharps_returned" if isinstance(data, p.SharpsReturned) else "street_needles"
            d[f"{prefix}_count"] += data.count or 0
            kg = exp.kg[(district, day)]
            kg[f"{prefix}_kg"] = kg.get(f"{prefix}_kg", Decimal(0)) + Decimal(
                str(data.weight_kg or 0)
            )
        elif isinstance(data, p.IncidentReported):
            overdose = data.kind in OVERDOSE_KINDS
            d["incidents"] += 1
            d["overdoses"] += overdose
            d["life_threatening"] += data.life_threatening
            d["naloxone_doses"] += data.interventions.naloxone_doses
            d["ambulance_calls"] += data.interventions.ambulance_called
            d["hospital_transfers"] += data.outcome is Outcome.TRANSFERRED_TO_HOSPITAL
            d["deaths"] += data.outcome is Outcome.DIED
            f["incidents"] += 1
            f["overdoses"] += overdose
        elif isinstance(data, p.DrugCheckResult):
            d["drug_checks"] += 1
            d["drug_checks_unexpected"] += bool(data.unexpected)
    clients: dict[Key, set[str]] = defaultdict(set)
    for (facility_id, visit_id), start in starts.items():
        assert isinstance(start.data, p.VisitStarted)
        day = start.time.astimezone(zone).date()
        district = city.facility_by_id[facility_id].district
        d = exp.district[(district, day)]
        d["visits"] += 1
        clients[(district, day)].add(start.data.client_pseudonym)
        d["new_clients"] += start.data.first_visit
        d["assisted_injections"] += start.data.assisted_injection
        end = ends.get((facility_id, visit_id))
        d["visits_completed"] += end is not None and start.time <= end <= start.time + max_visit
        exp.facility[(facility_id, day)]["visits"] += 1
    for day_key, pseudonyms in clients.items():
        exp.district[day_key]["unique_clients"] = len(pseudonyms)
    return exp


def compare(exp: Expected, obs: Observed) -> list[str]:
    """Every difference between the expected figures and the read models, as text lines."""
    diffs: list[str] = []
    for key in sorted(set(exp.district) | set(exp.kg) | set(obs.district)):
        row = obs.district.get(key, {})
        for col in DISTRICT_COLUMNS:
            want: int | Decimal = (
                exp.kg.get(key, {}).get(col, Decimal(0))
                if col.endswith("_kg")
                else exp.district.get(key, Counter()).get(col, 0)
            )
            got = row.get(col) or 0
            if got != want:
                diffs.append(
                    f"district_daily {key[0]} {key[1]} {col}: read model {got}, log {want}"
                )
    for key in sorted(set(exp.facility) | set(obs.facility)):
        frow = obs.facility.get(key, {})
        for col in FACILITY_COLUMNS:
            fwant = exp.facility.get(key, Counter()).get(col, 0)
            fgot = frow.get(col) or 0
            if fgot != fwant:
                diffs.append(
                    f"facility_daily {key[0]} {key[1]} {col}: read model {fgot}, log {fwant}"
                )
    for event_type in sorted(set(exp.types) | set(obs.types)):
        if exp.types[event_type] != obs.types[event_type]:
            diffs.append(
                f"projection_events {event_type}: read model {obs.types[event_type]}, "
                f"log {exp.types[event_type]} (unique usable events)"
            )
    return diffs


# --- I/O --------------------------------------------------------------------------------------


async def _read(consumer: Any, limits: Mapping[TopicPartition, int], timeout: float) -> list[Rec]:
    """Every record of each partition from its beginning up to (excluding) its limit."""
    wanted = {tp: n for tp, n in limits.items() if n > 0}
    if not wanted:
        return []
    consumer.assign(list(wanted))
    await consumer.seek_to_beginning(*wanted)
    out: list[Rec] = []
    pending = set(wanted)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise Unavailable(f"reading the topics took longer than {timeout:.0f} s")
        batch = await consumer.getmany(*pending, timeout_ms=500)
        for tp, msgs in batch.items():
            for m in msgs:
                if m.offset < wanted[tp]:
                    out.append(
                        Rec(
                            m.topic,
                            m.partition,
                            m.offset,
                            tuple((k, bytes(v)) for k, v in (m.headers or ())),
                            m.value,
                        )
                    )
        for tp in list(pending):
            if await consumer.position(tp) >= wanted[tp]:
                pending.discard(tp)
    return out


async def _observe(dsn: str, group: str) -> Observed:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            offsets = {
                (r["topic"], r["partition"]): int(r["next_offset"])
                for r in await conn.fetch(
                    "SELECT topic, partition, next_offset FROM projection_offsets "
                    "WHERE consumer_group = $1",
                    group,
                )
            }
            district = {
                (r["district"], r["day"]): dict(r)
                for r in await conn.fetch("SELECT * FROM district_daily")
            }
            facility = {
                (r["facility"], r["day"]): dict(r)
                for r in await conn.fetch("SELECT * FROM facility_daily")
            }
            types = Counter(
                {
                    r["type"]: int(r["n"])
                    for r in await conn.fetch(
                        "SELECT type, count(*) AS n FROM projection_events GROUP BY type"
                    )
                }
            )
        return Observed(offsets, district, facility, types)
    finally:
        await conn.close()


async def _stored(dsn: str, group: str) -> dict[TP, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT topic, partition, next_offset FROM projection_offsets "
            "WHERE consumer_group = $1",
            group,
        )
        return {(r["topic"], r["partition"]): int(r["next_offset"]) for r in rows}
    finally:
        await conn.close()


@dataclass
class Result:
    expected: Expected
    differences: list[str]
    lag: int
    missing_letters: int


async def reconcile(
    *,
    wait_s: float = 0.0,
    allow_lag: bool = False,
    check_deadletters: bool = True,
    read_timeout_s: float = 120.0,
    config: ProjectionConfig | None = None,
) -> Result:
    """Compare the read models with the log (``config``: default from the environment)."""
    config = config or ProjectionConfig()
    platform = config.platform
    kafka, dsn, city = platform.kafka, platform.dsn, platform.city
    group = config.settings.group_id
    consumer = AIOKafkaConsumer(
        **client_kwargs(kafka),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    try:
        await consumer.start()
    except (KafkaError, OSError) as exc:
        raise Unavailable(f"Kafka at {kafka.bootstrap_servers}: {type(exc).__name__}") from exc
    try:
        tps = await partitions_of(kafka, [kafka.topic(t) for t in EVENT_TOPICS])
        if not tps:
            raise Unavailable("the event topics do not exist")
        ends = {tp: int(o) for tp, o in (await consumer.end_offsets(tps)).items()}
        deadline = time.monotonic() + wait_s
        while wait_s > 0:
            stored = await _stored(dsn, group)
            if all(stored.get((tp.topic, tp.partition), 0) >= end for tp, end in ends.items()):
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        obs = await _observe(dsn, group)
        limits = {tp: obs.offsets.get((tp.topic, tp.partition), 0) for tp in tps}
        records = await _read(consumer, limits, read_timeout_s)
        now_ends = {tp: int(o) for tp, o in (await consumer.end_offsets(tps)).items()}
        lag = sum(max(now_ends[tp] - limits[tp], 0) for tp in tps)
        exp = count(records, city, config.settings.max_visit)
        diffs = compare(exp, obs)
        if lag and not allow_lag:
            diffs.append(f"lag: {lag} record(s) in the event topics not applied yet")
        missing = 0
        if check_deadletters and exp.skipped_at:
            dlq = await partitions_of(kafka, [kafka.topic(DEADLETTER)])
            dlq_ends = {tp: int(o) for tp, o in (await consumer.end_offsets(dlq)).items()}
            letters = {
                (h.get("dlq_original_topic", b"").decode(), h.get("dlq_original_partition", b""),
                 h.get("dlq_original_offset", b""))
                for h in (dict(r.headers) for r in await _read(consumer, dlq_ends, read_timeout_s))
            }  # fmt: skip
            for topic, partition, offset in exp.skipped_at:
                if (topic, str(partition).encode(), str(offset).encode()) not in letters:
                    missing += 1
                    diffs.append(
                        f"dead letter missing for {topic} partition {partition} offset {offset}"
                    )
        return Result(exp, diffs, lag, missing)
    except (KafkaError, OSError) as exc:
        raise Unavailable(f"Kafka: {type(exc).__name__}") from exc
    finally:
        await consumer.stop()


def report(result: Result, out: TextIO) -> None:
    exp = result.expected
    out.write(
        f"reconcile: {exp.records} record(s) read, {sum(exp.types.values())} unique usable "
        f"event(s), {exp.duplicates} duplicate(s), {sum(exp.skipped.values())} skipped "
        f"(dead-letter-worthy), lag {result.lag}\n"
    )
    for reason, n in sorted(exp.skipped.items()):
        out.write(f"  skipped {n}: {reason}\n")
    days = {k for k, c in exp.district.items() if any(c.values())}
    out.write(f"  compared {len(days)} district-day(s), {len(exp.types)} event type(s)\n")
    if result.differences:
        out.write(f"reconcile: {len(result.differences)} DIFFERENCE(S)\n")
        for line in result.differences:
            out.write(f"  {line}\n")
    else:
        out.write("reconcile: OK, read models equal the log\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.projection.reconcile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the projection to apply everything in the topics",
    )
    parser.add_argument(
        "--allow-lag",
        action="store_true",
        help="compare the applied prefix only; records not applied yet are not a difference",
    )
    parser.add_argument(
        "--no-deadletters",
        dest="deadletters",
        action="store_false",
        help="do not check that skipped records are in the dead-letter topic",
    )
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(
            reconcile(
                wait_s=args.wait, allow_lag=args.allow_lag, check_deadletters=args.deadletters
            )
        )
    except (Unavailable, OSError, asyncpg.PostgresError) as exc:
        print(f"reconcile: cannot run: {exc}", file=sys.stderr)
        return 2
    report(result, sys.stdout)
    return 1 if result.differences else 0


if __name__ == "__main__":
    sys.exit(main())
