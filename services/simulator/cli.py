"""``dcr-sim``: simulate the city's consumption rooms against the public ingest APIs.

Examples::

    dcr-sim                                  # today so far at 3600x, then on in real time
    dcr-sim --days 1                         # the last 24 h, as fast as the services take it
    dcr-sim --days 7 --facilities halmtorv,amager --seed 7 --set overdoses_per_1000=20
    dcr-sim --days 1 --dry-run | head        # the intended requests as JSON lines, no HTTP
    DCR_TODAY=2027-03-28T23:30 dcr-sim --days 1 --dry-run   # as if now were then (DST day)

Time: the simulated clock runs at ``--speed`` from ``--start`` but never ahead of the wall clock
(the APIs refuse events from the future), so a fast run backfills and then carries on in real
time. Reports carry their simulated ``occurred_at``. Without ``--days``/``--duration`` the run
goes on until SIGINT/SIGTERM; it then delivers what is queued (``--grace`` seconds) and prints a
summary. The same seed, parameters, facilities and start give the same requests with the same
Idempotency-Keys, so re-running a run (e.g. restarting the default run the same day) re-delivers
as idempotent replays instead of duplicating events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import httpx
import yaml

from services.simulator.model import SANITATION_PRINCIPAL, IntendedReport, Service, simulate
from services.simulator.params import SimParams, dump_params, load_params
from services.simulator.runner import Runner, SimClock, Stats
from services.simulator.sender import RetryPolicy, Sender
from shared.city import City, load_city
from shared.progress import CommandProgress
from shared.settings import REPO_ROOT, CitySettings

log = logging.getLogger("dcr-sim")

#: The ingest APIs refuse occurred_at older than 30 days (DCR_INGEST_HORIZON_DAYS); keep a margin.
MAX_BACKFILL = timedelta(days=29)
FAST_SPEED = 17_280.0  # one simulated day in 5 s
CATCH_UP_SPEED = 3_600.0  # one simulated hour per second
#: Plan as if now were another local date/time (dry runs only; see plan_now).
TODAY_ENV = "DCR_TODAY"
DEFAULT_URLS = {
    Service.INTAKE: "http://127.0.0.1:8001",
    Service.SUPPLY: "http://127.0.0.1:8002",
    Service.INCIDENT: "http://127.0.0.1:8003",
}


class UsageError(Exception):
    pass


@dataclass(frozen=True)
class Plan:
    """What one run simulates (everything the request stream depends on) and how fast."""

    city: City
    params: SimParams
    seed: int
    start: datetime
    end: datetime | None
    facilities: tuple[str, ...]
    services: frozenset[Service]
    street: bool
    speed: float

    @property
    def run_id(self) -> str:
        """Hash of everything the stream depends on: part of every Idempotency-Key."""
        ident = {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "facilities": self.facilities,
            "street": self.street,
            "params": self.params.model_dump(mode="json"),
            "city": self.city.model_dump(mode="json"),
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]

    def reports(self) -> Iterator[IntendedReport]:
        stream = simulate(
            self.city,
            self.params,
            seed=self.seed,
            start=self.start,
            end=self.end,
            facilities=self.facilities,
            street=self.street,
        )
        return (r for r in stream if r.service in self.services)

    def principals(self) -> set[str]:
        needed = set(self.facilities)
        if self.street and Service.SUPPLY in self.services and self.params.street_sweeps_per_day:
            needed.add(SANITATION_PRINCIPAL)
        return needed


# --- argument parsing -------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1.5d``, ``3600s`` or ``3600`` (seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if m is None:
        raise UsageError(f"bad duration {text!r} (use e.g. 90m, 2h, 1d)")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    duration = timedelta(seconds=float(m.group(1)) * unit)
    if duration <= timedelta(0):
        raise UsageError("the duration must be positive")
    return duration


def parse_start(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """``now``, ``today`` (local midnight), a date (local midnight) or an ISO datetime (local
    time zone if none given)."""
    if text == "now":
        return now
    if text == "today":
        text = now.astimezone(zone).date().isoformat()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=zone)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"bad --start {text!r} (use now, today, 2026-11-27 or an ISO time)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def today_override(text: str, zone: ZoneInfo, wall: datetime) -> datetime:
    """The "now" ``DCR_TODAY`` asks for: a local date (keeping the wall clock's local time of
    day) or a local ISO time such as ``2028-02-29T23:30``."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            day = date.fromisoformat(text.strip())
            local = wall.astimezone(zone)
            return datetime.combine(day, local.time(), tzinfo=zone).replace(microsecond=0)
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"bad {TODAY_ENV}={text!r} (use 2028-02-29 or 2028-02-29T23:30)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def plan_now(
    args: argparse.Namespace, environ: Mapping[str, str], wall: datetime, city: City
) -> datetime:
    """The instant a plan is made from: the wall clock, or ``DCR_TODAY`` with ``--dry-run`` (to
    see what a DST day, a payday or a month end produces). A run that sends needs the real
    clock: the ingest APIs refuse event times in the future or beyond their 30-day horizon."""
    text = environ.get(TODAY_ENV, "").strip()
    if not text:
        return wall
    if not args.dry_run:
        raise UsageError(
            f"{TODAY_ENV} is honoured with --dry-run only: the ingest APIs judge event times by "
            "their own clock"
        )
    return today_override(text, city.zone, wall)


def _set_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError("use NAME=VALUE")
    name, value = text.split("=", 1)
    return name.strip(), yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="dcr-sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = ap.add_argument_group("what to simulate")
    what.add_argument("--facilities", help="comma-separated facility ids (default: all)")
    what.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    what.add_argument("--params", type=Path, help="YAML file of model parameters")
    what.add_argument(
        "--set",
        dest="overrides",
        type=_set_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one parameter, e.g. --set overdoses_per_1000=20 "
        "--set street_needles_mean.vesterbro=80 (repeatable)",
    )
    what.add_argument("--visits-per-booth-per-day", type=float, metavar="N")
    what.add_argument("--overdoses-per-1000", type=float, metavar="N")
    what.add_argument("--payday-multiplier", type=float, metavar="X")
    what.add_argument("--no-street", action="store_true", help="no street needle sweeps")
    what.add_argument(
        "--city", type=Path, help="city file (default: DCR_CITY_FILE or deploy/city.yaml)"
    )
    when = ap.add_argument_group("time")
    when.add_argument("--start", help="now | today | YYYY-MM-DD | ISO time (default: see above)")
    bound = when.add_mutually_exclusive_group()
    bound.add_argument("--days", type=float, help="simulated days to run (default: forever)")
    bound.add_argument("--duration", help="simulated time to run, e.g. 90m, 6h, 2d")
    when.add_argument(
        "--speed",
        type=float,
        help=f"simulated seconds per real second (default: {FAST_SPEED:g} with --days/--duration,"
        f" else {CATCH_UP_SPEED:g}); 1 = real time",
    )
    out = ap.add_argument_group("where to")
    out.add_argument(
        "--tokens",
        type=Path,
        default=REPO_ROOT / ".state" / "auth" / "dev-tokens.yaml",
        help="YAML: principal id -> clear bearer token (default: .state/auth/dev-tokens.yaml)",
    )
    for service, url in DEFAULT_URLS.items():
        out.add_argument(f"--{service}-url", default=url, help=f"(default: {url})")
    out.add_argument(
        "--services",
        default="intake,supply,incident",
        help="send only to these services (default: all three)",
    )
    out.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds")
    out.add_argument(
        "--grace", type=float, default=10.0, help="seconds to deliver what is queued when stopped"
    )
    misc = ap.add_argument_group("other")
    misc.add_argument("--dry-run", action="store_true", help="print the requests, send nothing")
    misc.add_argument("--print-params", action="store_true", help="print the parameters as YAML")
    misc.add_argument("--no-progress", action="store_true", help="no progress bar")
    misc.add_argument("-v", "--verbose", action="store_true")
    return ap


def make_plan(args: argparse.Namespace, now: datetime, city: City) -> Plan:
    overrides = dict(args.overrides)
    for flag in ("visits_per_booth_per_day", "overdoses_per_1000", "payday_multiplier"):
        if getattr(args, flag) is not None:
            overrides[flag] = getattr(args, flag)
    try:
        params = load_params(args.params, overrides)
    except ValueError as exc:
        raise UsageError(f"parameters: {exc}") from None
    facilities = tuple(
        f.strip()
        for f in (args.facilities or ",".join(city.facility_by_id)).split(",")
        if f.strip()
    )
    unknown = [f for f in facilities if f not in city.facility_by_id]
    if unknown or not facilities:
        raise UsageError(
            f"unknown facilities {unknown}; known: {', '.join(city.facility_by_id)}"
            if unknown
            else "no facilities given"
        )
    try:
        services = frozenset(Service(s.strip()) for s in args.services.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--services takes {','.join(Service)}") from None
    duration: timedelta | None = None
    if args.days is not None:
        if args.days <= 0:
            raise UsageError("--days must be positive")
        duration = timedelta(days=args.days)
    elif args.duration is not None:
        duration = parse_duration(args.duration)
    # Durations are elapsed time: computed in UTC (aware arithmetic in the city's zone would be
    # wall-clock arithmetic, one hour short or long across a DST change).
    now = now.astimezone(UTC)
    if args.start is not None:
        start = parse_start(args.start, city.zone, now).astimezone(UTC)
    elif duration is not None:
        start = now - duration
    else:
        start = parse_start("today", city.zone, now).astimezone(UTC)
    if start < now - MAX_BACKFILL:
        raise UsageError(
            f"--start is more than {MAX_BACKFILL.days} days ago: the ingest APIs refuse events "
            "older than 30 days"
        )
    speed = args.speed if args.speed is not None else (FAST_SPEED if duration else CATCH_UP_SPEED)
    if speed <= 0:
        raise UsageError("--speed must be positive")
    return Plan(
        city=city,
        params=params,
        seed=args.seed,
        start=start.replace(microsecond=0),
        end=(start + duration).replace(microsecond=0) if duration else None,
        facilities=facilities,
        services=services,
        street=not args.no_street,
        speed=speed,
    )


def load_tokens(path: Path, needed: set[str]) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"no tokens file at {path}: `make up` (deploy/scripts/services.sh start) generates "
            "it; or pass --tokens"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of principal id to token")
    missing = sorted(needed - set(data))
    if missing:
        raise UsageError(f"{path} has no token for {', '.join(missing)}")
    return {str(k): str(v) for k, v in data.items()}


# --- progress and summary ---------------------------------------------------------------------


class Progress:
    """The run's progress on ``stream`` (:mod:`shared.progress`): a rich bar over the simulated
    period on a terminal (open-ended runs: the counters only); otherwise (a log file) a plain
    line every 10 s, every 60 s once the run follows real time."""

    def __init__(self, stream: TextIO, plan: Plan, runner: Runner, clock: SimClock) -> None:
        self.plan = plan
        self.runner = runner
        self.clock = clock
        span = (plan.end - plan.start).total_seconds() if plan.end is not None else None
        self.bar = CommandProgress(stream, self._title(), span)
        self._last = (time.monotonic(), 0)
        self._rate = 0.0

    def _title(self) -> str:
        if self.plan.end is not None:
            return "dcr-sim"
        return "dcr-sim [real time]" if self.clock.real_time() else "dcr-sim [catching up]"

    def _position(self) -> datetime:
        plan = self.plan
        pos = self.runner.delivered_until() or plan.start
        if self.runner.completed and plan.end is not None:
            pos = plan.end
        if plan.end is None and self.clock.real_time() and not self.runner.queued:
            pos = max(pos, self.clock.now())  # nothing due: the simulated time is now
        return pos

    def status(self, pos: datetime) -> str:
        total = self.runner.stats.total()
        now, last_n = time.monotonic(), self._last
        if now > last_n[0]:
            inst = (total.accepted - last_n[1]) / (now - last_n[0])
            self._rate = inst if self._rate == 0 else 0.7 * self._rate + 0.3 * inst
        self._last = (now, total.accepted)
        local = pos.astimezone(self.plan.city.zone).strftime("%a %d %b %H:%M")
        return (
            f"sim {local} | sent {total.sent} ok {total.accepted} retried {total.retried}"
            f" failed {total.failed} | queued {self.runner.queued} | {self._rate:.0f}/s"
        )

    def draw(self) -> None:
        pos = self._position()
        status = self.status(pos)
        self.bar.update((pos - self.plan.start).total_seconds(), status)
        if not self.bar.live:
            done = ""
            if self.plan.end is not None:
                span = (self.plan.end - self.plan.start).total_seconds()
                frac = min(1.0, max(0.0, (pos - self.plan.start).total_seconds() / span))
                done = f"{frac * 100:3.0f}% "
            self.bar.log_line(done + status)

    async def run(self) -> None:
        while not self.runner.finished:
            self.draw()
            if self.bar.live:
                await asyncio.sleep(0.25)
            else:
                await asyncio.sleep(60.0 if self.clock.real_time() else 10.0)


def format_summary(stats: Stats, plan: Plan, run_id: str, wall_s: float, stopped: bool) -> str:
    zone = plan.city.zone
    until = plan.end or stats.position or plan.start

    def fmt(t: datetime) -> str:
        return t.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    lines = [
        f"dcr-sim summary: run {run_id}, seed {plan.seed}, {len(plan.facilities)} facilities, "
        f"{fmt(plan.start)} -> {fmt(until)} {zone.key}, {wall_s:.1f} s"
        + (" (stopped)" if stopped else ""),
        f"{'event':<26}{'sent':>8}{'accepted':>10}{'retried':>9}{'failed':>8}{'unsent':>8}",
    ]
    for event in sorted(stats.by_event):
        s = stats.by_event[event]
        lines.append(
            f"{event:<26}{s.sent:>8}{s.accepted:>10}{s.retried:>9}{s.failed:>8}{s.unsent:>8}"
        )
    t = stats.total()
    lines.append(
        f"{'total':<26}{t.sent:>8}{t.accepted:>10}{t.retried:>9}{t.failed:>8}{t.unsent:>8}"
    )
    if t.replayed:
        lines.append(
            f"{t.replayed} accepted as idempotent replays (already delivered by an earlier run "
            "with the same run id)"
        )
    lines.append(f"visits still open at the end: {stats.open_visits}")
    return "\n".join(lines)


def _dry_run(plan: Plan, run_id: str, out: TextIO) -> None:
    for r in plan.reports():
        row = {
            "at": r.at.isoformat(),
            "service": str(r.service),
            "path": r.path,
            "key": f"sim-{run_id}-{r.lane}-{r.seq}",
            "principal": r.principal,
            "event": r.event,
            "body": r.body,
            "visit_ref": r.visit_ref,
            "needs_visit": r.needs_visit,
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


# --- main ------------------------------------------------------------------------------------


async def run_plan(
    plan: Plan,
    clients: Mapping[Service, httpx.AsyncClient],
    tokens: Mapping[str, str],
    *,
    stop: asyncio.Event,
    grace_s: float = 10.0,
    progress: TextIO | None = None,
) -> tuple[Runner, float]:
    """Run ``plan`` against ``clients`` until done or ``stop``; returns the runner and wall time."""
    clock = SimClock(plan.start, plan.speed)
    sender = Sender(clients, tokens, policy=RetryPolicy())
    runner = Runner(plan.reports(), sender, clock, run_id=plan.run_id)
    started = time.monotonic()
    bar = Progress(progress, plan, runner, clock) if progress is not None else None
    async with contextlib.AsyncExitStack() as shown:
        if bar is not None:
            bar.bar.start()
            shown.callback(bar.bar.stop)
            shown.enter_context(bar.bar.logging_above())
            shown.callback(bar.draw)  # the final state, drawn once the ticker is gone
            shown.push_async_callback(_cancelled, asyncio.create_task(bar.run()))
        await runner.run(stop, grace_s)
    return runner, time.monotonic() - started


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _amain(args: argparse.Namespace, plan: Plan) -> int:
    tokens = load_tokens(args.tokens, plan.principals())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.warning(
                "%s: stopping; delivering what is queued (up to %gs; again to quit now)",
                signal.Signals(signum).name,
                args.grace,
            )
            stop.set()
        elif main_task is not None:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            s: await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=getattr(args, f"{s}_url"), timeout=args.timeout, limits=limits
                )
            )
            for s in plan.services
        }
        run_id = plan.run_id
        log.info(
            "run %s: %s, seed %d, from %s%s at %gx",
            run_id,
            ",".join(plan.facilities),
            plan.seed,
            plan.start.astimezone(plan.city.zone).isoformat(),
            f" to {plan.end.astimezone(plan.city.zone).isoformat()}" if plan.end else " on",
            plan.speed,
        )
        progress = None if args.no_progress else sys.stderr
        try:
            runner, wall = await run_plan(
                plan, clients, tokens, stop=stop, grace_s=args.grace, progress=progress
            )
        except asyncio.CancelledError:
            log.warning("quit without delivering the queue")
            return 130
    stats = runner.stats
    print(format_summary(stats, plan, run_id, wall, stop.is_set()))
    return 1 if stats.total().failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="dcr-sim: %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        city = load_city(args.city or CitySettings().file)  # the one place it is loaded
        wall = datetime.now(UTC).replace(microsecond=0)
        plan = make_plan(args, plan_now(args, os.environ, wall, city), city)
        if args.print_params:
            print(dump_params(plan.params), end="")
            return 0
        if args.dry_run:
            if plan.end is None:
                raise UsageError("--dry-run needs --days or --duration")
            _dry_run(plan, plan.run_id, sys.stdout)
            return 0
        return asyncio.run(_amain(args, plan))
    except UsageError as exc:
        log.error("%s", exc)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
