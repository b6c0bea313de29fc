"""``python -m bench.public_month``: how long deciding the public tables of a month takes.

No Kafka, no PostgreSQL: the simulator's model (``services.simulator.model.simulate``, default
parameters, every room of ``deploy/city.yaml``) runs for the weeks around one month and the month
before it (so the month's audit has the month before, as in service); its reports
are counted into each district's daily figures the way the projection counts them (visits by
route and substance, refusals, referrals, services, incidents by kind and outcome, drug checks);
then every day, every ISO week and the month are decided in release order
(:meth:`ReleaseRule.order`), each with the released periods its audit must include
(:meth:`ReleaseRule.audit_context`), exactly as the public service does. Prints (and with
``--out`` writes) the seconds each decision took and how many cells it hid.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from services.projection.figures import empty_day, sum_days, to_json
from services.projection.public import SECONDS, Figures, Release, decide, sum_tables
from services.projection.release_periods import Period, PeriodKind, ReleaseRule
from services.projection.suppression import CITY
from services.simulator.model import IntendedReport, simulate
from services.simulator.params import SimParams
from shared.city import City, load_city
from shared.events.vocabulary import OVERDOSE_KINDS, IncidentKind
from shared.settings import REPO_ROOT

_OVERDOSES = {k.value for k in OVERDOSE_KINDS}


def simulated_days(
    city: City, seed: int, first: date, last: date
) -> dict[date, dict[str, Figures]]:
    """Each day's figures per district (and the city), ``first`` .. ``last`` inclusive."""
    start = datetime.combine(first, clock_time(0), city.zone)
    end = datetime.combine(last + timedelta(days=1), clock_time(0), city.zone)
    days: dict[tuple[str, date], dict[str, Any]] = defaultdict(empty_day)
    clients: dict[tuple[str, date], set[str]] = defaultdict(set)
    for r in simulate(city, SimParams(), seed=seed, start=start, end=end):
        _count(city, r, days, clients)
    out: dict[date, dict[str, Figures]] = {}
    d = first
    while d <= last:
        per = {k.id: days[(k.id, d)] for k in city.districts}
        for k in per:
            per[k]["unique_clients"] = len(clients[(k, d)])
        tables = {CITY: sum_days(per.values()), **per}
        out[d] = {t: {**to_json(v), SECONDS: float(v[SECONDS])} for t, v in tables.items()}
        d += timedelta(days=1)
    return out


def _count(
    city: City,
    r: IntendedReport,
    days: dict[tuple[str, date], dict[str, Any]],
    clients: dict[tuple[str, date], set[str]],
) -> None:
    b = r.body
    district = b.get("district") or city.facility_by_id[b["facility_id"]].district
    day = datetime.fromisoformat(b["occurred_at"]).astimezone(city.zone).date()
    f = days[(district, day)]
    if r.event == "visit.started":
        f["visits"] += 1
        f["visits_by_route"][b["route"]] += 1
        for s in b["substances"]:
            f["visits_by_substance"][s] += 1
        f["assisted_injections"] += int(b["assisted_injection"])
        f["new_clients"] += int(b["first_visit"])
        clients[(district, day)].add(f"{b['facility_id']}/{b['client_code']}")
    elif r.event == "visit.ended":
        f["visits_completed"] += 1
    elif r.event == "visit.refused":
        f["refusals"] += 1
        f["refusals_by_reason"][b["reason"]] += 1
    elif r.event == "referral.made":
        f["referrals"] += 1
        f["referrals_by_kind"][b["referral_to"]] += 1
    elif r.event == "service.given":
        f["services"] += 1
        f["services_by_kind"][b["service"]] += 1
    elif r.event == "drugcheck.result":
        f["drug_checks"] += 1
        f["drug_checks_unexpected"] += int(b["expected"] not in b["found"])
    elif r.event == "incident.reported":
        _incident(f, b)


def _incident(f: dict[str, Any], b: Any) -> None:
    f["incidents"] += 1
    f["incidents_by_kind"][b["kind"]] += 1
    f["incidents_by_outcome"][b["outcome"]] += 1
    f["overdoses"] += int(b["kind"] in _OVERDOSES)
    f["life_threatening"] += int(b["life_threatening"])
    interventions = b.get("interventions", {})
    f["naloxone_doses"] += interventions.get("naloxone_doses", 0)
    f["ambulance_calls"] += int(interventions.get("ambulance_called", False))
    f["hospital_transfers"] += int(b["outcome"] == "transferred_to_hospital")
    f["deaths"] += int(b["outcome"] == "died")
    assert b["kind"] in {k.value for k in IncidentKind}


def release_order(rule: ReleaseRule, first: date, last: date) -> list[Period]:
    """Every day, ISO week and month lying wholly within ``first`` .. ``last``, in release
    order."""
    found: set[Period] = set()
    for kind in PeriodKind:
        p = Period.containing(kind, first)
        while p.start <= last:
            if p.start >= first and p.end <= last:
                found.add(p)
            p = Period.containing(kind, p.end + timedelta(days=1))
    return sorted(found, key=rule.order)


def decide_all(
    rule: ReleaseRule,
    periods: Sequence[Period],
    days: dict[date, dict[str, Figures]],
    districts: Sequence[str],
    threshold: int,
) -> Iterable[tuple[Release, float]]:
    """Decide ``periods`` in order as the public service does; yields each release with the
    seconds its decision took."""
    released: dict[Period, Release] = {}
    now = datetime.combine(max(days) + timedelta(days=40), clock_time(12), rule.zone)
    for p in periods:
        earlier = [released[q] for q in rule.audit_context(p) if q in released]
        if p.kind is PeriodKind.DAY:
            tables = days[p.start]
        else:
            parts = [released[d].tables for d in p.days()]
            tables = {t: sum_tables([d[t] for d in parts]) for t in (CITY, *districts)}
        began = time.perf_counter()
        r = decide(p, tables, earlier, districts, threshold, now)
        seconds = time.perf_counter() - began
        released[p] = r
        yield r, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.public_month", description=__doc__)
    parser.add_argument("--month", default="2026-03", help="YYYY-MM (default 2026-03)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threshold", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args(argv)
    city = load_city(REPO_ROOT / "deploy" / "city.yaml")
    month = Period.of(PeriodKind.MONTH, date.fromisoformat(f"{args.month}-01"))
    before = Period.containing(PeriodKind.MONTH, month.start - timedelta(days=1))
    first = Period.containing(PeriodKind.WEEK, before.start).start  # the month before, too
    last = Period.containing(PeriodKind.WEEK, month.end).end
    began = time.perf_counter()
    days = simulated_days(city, args.seed, first, last)
    simulated = time.perf_counter() - began
    rule = ReleaseRule(city.zone)
    districts = [d.id for d in city.districts]
    lines = [
        f"# Public release decisions for {args.month} (simulated, seed {args.seed})",
        "",
        f"Command: `.venv/bin/python -m bench.public_month --month {args.month} "
        f"--seed {args.seed} --threshold {args.threshold}`  ",
        f"Simulated {first} .. {last} ({len(days)} days, {len(city.facilities)} rooms, "
        f"{len(districts)} districts) in {simulated:.1f} s; threshold {args.threshold}.",
        "",
        "| period | seconds | hidden cells | of person cells | withheld | city visits |",
        "|---|---:|---:|---:|---|---:|",
    ]
    print("\n".join(lines), flush=True)
    totals: dict[PeriodKind, float] = defaultdict(float)
    for r, seconds in decide_all(rule, release_order(rule, first, last), days, districts,
                                 args.threshold):  # fmt: skip
        totals[r.period.kind] += seconds
        line = (
            f"| {r.period.name} | {seconds:.2f} | {len(r.hidden)} | {len(r.cells())} | "
            f"{'yes' if r.withheld else 'no'} | {r.tables[CITY]['visits']} |"
        )
        lines.append(line)
        print(line, flush=True)
    summary = ", ".join(f"{k.value}s {v:.1f} s" for k, v in totals.items())
    lines += ["", f"Total decision time: {summary}."]
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
