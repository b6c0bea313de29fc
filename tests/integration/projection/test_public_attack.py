"""An attacker against the public API, written without the suppression code: its own list of
the relations a reader knows, its own interval propagation and its own LP / integer programs
(scipy's ``linprog``), over every table the public API releases for a simulated week (seven
days and the week itself) and for a simulated month with its days and its weeks (one of them
across the month's end): four districts, three of them with one small room (counts of 1..4,
overdoses, deaths), one busy one.

Property: no hidden cell is recovered to a range narrower than the protection interval (the
suppression threshold), whether the attacker assumes hidden cells are >= 0 or, as the issue's
attack did, >= 1 ("zeros are shown"); the one exception allowed is a hidden cell the attacker
computes exactly that is no small count (a released day's zero or a large number that a later
week's or month's shown sum gives away: it tells nothing about a few people). The true figures
are written into the read models, so the test knows every hidden value and checks the
attacker's ranges contain them.

"Now" is injected: fixed periods in 2029 and a clock after their release.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
import pytest
from scipy.optimize import linprog

from services.projection.bootstrap import ProjectionConfig
from services.projection.public_app import create_app as public_app
from services.projection.settings import ProjectionSettings
from tests.support import flatten_table, serve

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Copenhagen")
MONDAY = date(2029, 10, 1)  # October 2029 begins on a Monday; its last week ends on Nov 4
#: scenario -> (days released, aggregates released: name -> its days)
SCENARIOS: dict[str, tuple[list[date], dict[str, list[date]]]] = {
    "week": (
        [MONDAY + timedelta(days=i) for i in range(7)],
        {f"week:{MONDAY}": [MONDAY + timedelta(days=i) for i in range(7)]},
    ),
    "month": (
        [MONDAY + timedelta(days=i) for i in range(35)],
        {
            **{
                f"week:{MONDAY + timedelta(days=7 * w)}": [
                    MONDAY + timedelta(days=7 * w + i) for i in range(7)
                ]
                for w in range(5)
            },
            f"month:{MONDAY}": [MONDAY + timedelta(days=i) for i in range(31)],
        },
    ),
}
DISTRICTS = ["vesterbro", "nordvest", "sydhavn", "amager"]
THRESHOLD = 5

# --- what the attacker knows: the published relations, by name -------------------------------
ROUTES = ["inject", "smoke", "snort", "oral"]
REASONS = ["capacity", "closed", "intoxicated", "behaviour", "other"]
KINDS = [
    "opioid_overdose",
    "stimulant_overamping",
    "wrong_drug_or_adulterant",
    "seizure",
    "other_medical",
    "violence",
    "other",
]
OUTCOMES = ["recovered_on_site", "transferred_to_hospital", "left", "died"]
SUMS = {  # total -> its parts, within one table
    "visits": [f"visits_by_route.{r}" for r in ROUTES],
    "refusals": [f"refusals_by_reason.{r}" for r in REASONS],
    "incidents#kind": [f"incidents_by_kind.{k}" for k in KINDS],
    "incidents#outcome": [f"incidents_by_outcome.{o}" for o in OUTCOMES],
    "overdoses": ["incidents_by_kind.opioid_overdose", "incidents_by_kind.stimulant_overamping"],
    "deaths": ["incidents_by_outcome.died"],
    "hospital_transfers": ["incidents_by_outcome.transferred_to_hospital"],
}
ATTACKED = sorted(
    {"visits", "refusals", "incidents", "overdoses", "deaths"}
    | {p for parts in SUMS.values() for p in parts}
    | {"hospital_transfers"}
)


def _simulated_day(rng: random.Random, busy: bool) -> dict[str, Any]:
    routes = {r: rng.choice([30, 12, 7, 2, 0]) if busy else rng.choice([0, 0, 1, 2, 3])
              for r in ROUTES}  # fmt: skip
    reasons = {r: rng.choice([0, 0, 1, 2, 6]) for r in REASONS}
    kinds = {k: rng.choice([0, 0, 0, 1, 2]) for k in KINDS}
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for _ in range(sum(kinds.values())):
        outcomes[rng.choice(OUTCOMES)] += 1  # deaths included
    return {
        "visits": sum(routes.values()),
        "refusals": sum(reasons.values()),
        "incidents": sum(kinds.values()),
        "overdoses": kinds["opioid_overdose"] + kinds["stimulant_overamping"],
        "deaths": outcomes["died"],
        "hospital_transfers": outcomes["transferred_to_hospital"],
        "route": routes,
        "refusal_reason": reasons,
        "incident_kind": kinds,
        "incident_outcome": outcomes,
    }


async def _write_read_models(dsn: str, days: list[date]) -> dict[tuple[date, str], dict[str, Any]]:
    rng = random.Random(2029)
    truth: dict[tuple[date, str], dict[str, Any]] = {}
    conn = await asyncpg.connect(dsn)
    try:
        for day in days:
            for d in DISTRICTS:
                t = _simulated_day(rng, busy=d == "vesterbro")
                truth[(day, d)] = t
                await conn.execute(
                    """INSERT INTO district_daily (district, day, visits, refusals, incidents,
                           overdoses, deaths, hospital_transfers)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                    d, day, t["visits"], t["refusals"], t["incidents"], t["overdoses"],
                    t["deaths"], t["hospital_transfers"],
                )  # fmt: skip
                for dim in ("route", "refusal_reason", "incident_kind", "incident_outcome"):
                    for key, n in t[dim].items():
                        if n:
                            await conn.execute(
                                """INSERT INTO district_daily_breakdown
                                       (district, day, dimension, key, n)
                                   VALUES ($1, $2, $3, $4, $5)""",
                                d, day, dim, key, n,
                            )  # fmt: skip
    finally:
        await conn.close()
    return truth


def _relations(periods: list[str], aggregates: dict[str, list[str]]) -> list[list[tuple[str, int]]]:
    """Each relation as (cell, coefficient) pairs summing to 0; cell = 'period|table|field'."""
    out: list[list[tuple[str, int]]] = []
    tables = ["city", *DISTRICTS]
    for p in periods:
        for t in tables:
            for total, parts in SUMS.items():
                name = total.split("#")[0]
                out.append([(f"{p}|{t}|{name}", 1), *((f"{p}|{t}|{x}", -1) for x in parts)])
        for f in ATTACKED:
            out.append([(f"{p}|city|{f}", 1), *((f"{p}|{d}|{f}", -1) for d in DISTRICTS)])
    for w, days in aggregates.items():
        for t in tables:
            for f in ATTACKED:
                out.append([(f"{w}|{t}|{f}", 1), *((f"{d}|{t}|{f}", -1) for d in days)])
    return out


def _propagate(
    rels: list[list[tuple[str, int]]], known: dict[str, int], lo: dict[str, float],
    hi: dict[str, float],
) -> None:  # fmt: skip
    """Interval propagation: each relation bounds each unknown by the others' bounds."""
    for _ in range(50):
        changed = False
        for rel in rels:
            for cell, coef in rel:
                if cell in known:
                    continue
                rest_lo = rest_hi = 0.0  # of -coef*sum(others) ... solve coef*x = -sum(others)
                for other, c in rel:
                    if other == cell:
                        continue
                    a = known.get(other)
                    vlo, vhi = (a, a) if a is not None else (lo[other], hi[other])
                    term = -c * coef  # x = sum(term * other)
                    rest_lo += term * (vlo if term > 0 else vhi)
                    rest_hi += term * (vhi if term > 0 else vlo)
                if rest_lo > lo[cell] + 1e-9:
                    lo[cell], changed = rest_lo, True
                if rest_hi < hi[cell] - 1e-9:
                    hi[cell], changed = rest_hi, True
        if not changed:
            return


def _lp_ranges(
    rels: list[list[tuple[str, int]]], known: dict[str, int], unknown: list[str], floor: float
) -> dict[str, tuple[float, float]] | None:
    """min and max of every unknown by LP (scipy HiGHS), one connected group of unknowns at a
    time; None if the assumption (every unknown >= floor) is infeasible."""
    group = {c: c for c in unknown}

    def root(c: str) -> str:
        while group[c] != c:
            c = group[c]
        return c

    for rel in rels:
        cells = [c for c, _ in rel if c in group]
        for c in cells[1:]:
            group[root(c)] = root(cells[0])
    members: dict[str, list[str]] = defaultdict(list)
    for c in unknown:
        members[root(c)].append(c)
    out: dict[str, tuple[float, float]] = {}
    for cells in members.values():
        found = _lp_group(rels, known, cells, floor)
        if found is None:
            return None
        out.update(found)
    return out


def _lp_group(
    rels: list[list[tuple[str, int]]], known: dict[str, int], unknown: list[str], floor: float
) -> dict[str, tuple[float, float]] | None:
    index = {c: i for i, c in enumerate(unknown)}
    rows, rhs = [], []
    for rel in rels:
        if not any(c in index for c, _ in rel):
            continue
        row = np.zeros(len(unknown))
        const = 0.0
        for c, coef in rel:
            if c in index:
                row[index[c]] += coef
            else:
                const -= coef * known[c]
        rows.append(row)
        rhs.append(const)
    if not rows:
        return {c: (floor, np.inf) for c in unknown}
    a_eq, b_eq = np.array(rows), np.array(rhs)
    bounds = [(floor, None)] * len(unknown)

    def solve(objective: np.ndarray) -> Any:
        return linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")

    # feasible tables far apart first: a cell two of them set >= THRESHOLD apart is not narrow
    lo_seen = np.full(len(unknown), np.inf)
    hi_seen = np.full(len(unknown), -np.inf)
    signs = np.random.default_rng(len(unknown))
    for objective in (np.ones(len(unknown)), -np.ones(len(unknown)),
                      *(signs.choice((-1.0, 1.0), len(unknown)) for _ in range(4))):  # fmt: skip
        found = solve(objective)
        if found.status == 2:
            return None
        if found.status == 0:
            np.minimum(lo_seen, found.x, out=lo_seen)
            np.maximum(hi_seen, found.x, out=hi_seen)
    out: dict[str, tuple[float, float]] = {}
    for c, i in index.items():
        seen_low, seen_high = np.ceil(lo_seen[i] - 1e-6), np.floor(hi_seen[i] + 1e-6)
        if seen_high - seen_low >= THRESHOLD:
            out[c] = (seen_low, seen_high)  # proven wide (inner bounds): two feasible tables
            continue
        objective = np.zeros(len(unknown))
        objective[i] = 1
        low = solve(objective)
        if low.status == 2:
            return None
        high = solve(-objective)
        top = np.inf if high.status == 3 else -high.fun
        out[c] = (np.ceil(low.fun - 1e-6), np.floor(top + 1e-6))
    return out


def _disclosed(c: str, low: float, high: float, actual: dict[str, int]) -> bool:
    """Narrower than the protection interval, unless it is exactly a value that is no small
    count (0, or at least the threshold): that tells nothing about a few people."""
    if high - low >= THRESHOLD:
        return False
    return not (low == high == actual[c] and not 0 < actual[c] < THRESHOLD)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_no_hidden_cell_is_recovered_narrower_than_the_protection_interval(
    iso_env: TestEnv, scenario: str
) -> None:
    days, aggregates = SCENARIOS[scenario]
    now = datetime.combine(days[-1] + timedelta(days=2), time(7), ZONE)  # all are released
    config = ProjectionConfig(
        iso_env.platform(),
        ProjectionSettings(public_since=MONDAY, suppression_threshold=THRESHOLD),
    )
    truth = await _write_read_models(iso_env.dsn, days)

    published: dict[str, Any] = {}
    async with serve(public_app(clock=lambda: now, config=config)) as client:
        for name in [*aggregates, *(f"day:{d}" for d in days)]:  # the longest ones first
            kind, start = name.split(":")
            r = await client.get(f"/v1/public/{kind}/{start}", timeout=600)
            assert r.status_code == 200, r.text
            assert r.json()["withheld"] is False, name  # the periods publish
            published[name] = r.json()["tables"]

    actual: dict[str, int] = {}
    for (day, d), t in truth.items():
        flat = {k: v for k, v in t.items() if isinstance(v, int)}
        for dim, name in (("route", "visits_by_route"), ("refusal_reason", "refusals_by_reason"),
                          ("incident_kind", "incidents_by_kind"),
                          ("incident_outcome", "incidents_by_outcome")):  # fmt: skip
            flat.update({f"{name}.{k}": n for k, n in t[dim].items()})
        for f in ATTACKED:
            actual[f"day:{day}|{d}|{f}"] = flat[f]
    for key in list(actual):
        p, d, f = key.split("|")
        actual[f"{p}|city|{f}"] = actual.get(f"{p}|city|{f}", 0) + actual[key]
    for name, members in aggregates.items():
        for member in members:
            for key in [k for k in actual if k.startswith(f"day:{member}|")]:
                _, table, field = key.split("|")
                cell = f"{name}|{table}|{field}"
                actual[cell] = actual.get(cell, 0) + actual[key]

    known: dict[str, int] = {}
    unknown: list[str] = []
    withheld: list[str] = []
    for p, tables in published.items():
        for t, table in tables.items():
            if table is None:
                withheld.append(f"{p}|{t}")
                unknown += [f"{p}|{t}|{f}" for f in ATTACKED]
                continue
            flat = flatten_table(table)
            for f in ATTACKED:
                cell = f"{p}|{t}|{f}"
                if flat[f] is None:
                    unknown.append(cell)
                else:
                    known[cell] = flat[f]
                    assert flat[f] == actual[cell], cell  # what is shown is true
    small = [c for c, v in actual.items() if 0 < v < THRESHOLD]
    assert small and set(small) <= set(unknown), "every small count is hidden"
    assert any(actual[c] > 0 for c in unknown if c.endswith("|deaths")), "deaths were simulated"

    rels = _relations([f"day:{d}" for d in days] + list(aggregates),
                      {a: [f"day:{d}" for d in ds] for a, ds in aggregates.items()})  # fmt: skip
    # 1. interval propagation (>= 0)
    lo = dict.fromkeys(unknown, 0.0)
    hi = dict.fromkeys(unknown, np.inf)
    _propagate(rels, known, lo, hi)
    narrow = {c: (lo[c], hi[c]) for c in unknown if _disclosed(c, lo[c], hi[c], actual)}
    assert narrow == {}, f"interval propagation narrowed {len(narrow)} cells: {narrow}"
    # 2. LP bounds, first with >= 0, then with "a hidden cell is >= 1" where that is feasible
    for floor in (0.0, 1.0):
        ranges = _lp_ranges(rels, known, unknown, floor)
        if ranges is None:
            continue  # some hidden cell is 0: the ">= 1" reader is simply wrong here
        for c, (low, high) in ranges.items():
            # exact bounds contain the truth; a range proven wide by two tables is inner
            assert high - low >= THRESHOLD or low <= actual[c] <= high, (c, low, high, actual[c])
            assert not _disclosed(c, low, high, actual), (floor, c, low, high, actual[c])
    # control: the same attacker against primary suppression alone does recover cells
    weak_known = {c: v for c, v in actual.items() if not 0 < v < THRESHOLD}
    weak_unknown = [c for c in actual if c not in weak_known]
    lo = dict.fromkeys(weak_unknown, 0.0)
    hi = dict.fromkeys(weak_unknown, np.inf)
    _propagate(rels, weak_known, lo, hi)
    assert any(hi[c] - lo[c] < THRESHOLD for c in weak_unknown), "the attacker has no teeth"
    print(
        f"attacked {len(unknown)} hidden cells over {len(published)} released tables "
        f"({len(known)} shown, {len(withheld)} tables withheld): none narrower than {THRESHOLD}"
    )
