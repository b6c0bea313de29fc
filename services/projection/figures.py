"""The shape of a day's figures in the read API, and how district days add up to city days.

Pure functions over plain dicts (no I/O). A day's figures: every count field, the two weights
(kg), the visit minutes and one mapping per breakdown with every vocabulary key present (zeros
included), so consumers and the suppression see complete groups.

``unique_clients`` counts distinct pseudonyms among the day's visits. With the default
``pseudonym_scope: facility`` (deploy/city.yaml, shared.privacy) pseudonyms are per room: the
figure counts distinct (room, client code) pairs, an upper bound of people (one person visiting
two rooms counts twice). With ``pseudonym_scope: city`` it counts people. The city's figure is
not summed: it is the distinct count city-wide (``city_daily``), like the city median.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from services.projection import schema
from shared.events.vocabulary import (
    IncidentKind,
    OnSiteService,
    Outcome,
    ReferralKind,
    RefusalReason,
    Route,
    Substance,
    SupplyItem,
)

#: The read API's day figures, from the declaration of ``district_daily`` (:mod:`.schema`).
COUNT_FIELDS: tuple[str, ...] = schema.names(unit=schema.Unit.COUNT)
WEIGHT_FIELDS: tuple[str, ...] = schema.names(unit=schema.Unit.KG)
MINUTE_FIELDS: tuple[str, ...] = schema.names(unit=schema.Unit.MINUTES)
#: Not shown in the API; needed to add district means up to a city mean.
(SECONDS_FIELD,) = schema.names(unit=schema.Unit.SECONDS)

#: API name -> (stored dimension, its vocabulary).
BREAKDOWNS: dict[str, tuple[str, type[StrEnum]]] = {
    "visits_by_route": ("route", Route),
    "visits_by_substance": ("substance", Substance),
    "refusals_by_reason": ("refusal_reason", RefusalReason),
    "referrals_by_kind": ("referral", ReferralKind),
    "services_by_kind": ("service", OnSiteService),
    "supplies_by_item": ("supply_item", SupplyItem),
    "incidents_by_kind": ("incident_kind", IncidentKind),
    "incidents_by_outcome": ("incident_outcome", Outcome),
}
_BY_DIMENSION = {dim: name for name, (dim, _) in BREAKDOWNS.items()}

Day = dict[str, Any]


def empty_day() -> Day:
    day: Day = dict.fromkeys(COUNT_FIELDS, 0)
    day.update(dict.fromkeys(WEIGHT_FIELDS, Decimal(0)))
    day.update(dict.fromkeys(MINUTE_FIELDS))
    day[SECONDS_FIELD] = Decimal(0)
    for name, (_, vocab) in BREAKDOWNS.items():
        day[name] = {k.value: 0 for k in vocab}
    return day


def day_from_rows(row: Mapping[str, Any] | None, breakdown: Iterable[tuple[str, str, int]]) -> Day:
    """A day from its ``district_daily`` row (None: no row) and (dimension, key, n) rows."""
    day = empty_day()
    if row is not None:
        for f in (*COUNT_FIELDS, *WEIGHT_FIELDS, *MINUTE_FIELDS, SECONDS_FIELD):
            day[f] = row[f]
    for dimension, key, n in breakdown:
        name = _BY_DIMENSION.get(dimension)
        if name is not None:
            day[name][key] = int(n)
    return day


def sum_days(days: Iterable[Day], median: Decimal | None = None) -> Day:
    """Districts' figures of one day summed; the mean is recomputed from the summed seconds,
    the median must be given (it does not add up)."""
    total = empty_day()
    for d in days:
        for f in (*COUNT_FIELDS, *WEIGHT_FIELDS, SECONDS_FIELD):
            total[f] += d[f]
        for name in BREAKDOWNS:
            for k, n in d[name].items():
                total[name][k] = total[name].get(k, 0) + n
    total["visit_minutes_median"] = median
    total["visit_minutes_mean"] = mean_minutes(total[SECONDS_FIELD], total["visits_completed"])
    return total


def mean_minutes(seconds: Decimal, completed: int) -> Decimal | None:
    """Same rounding as the store (2 decimals, half away from zero)."""
    if completed <= 0:
        return None
    return (Decimal(seconds) / completed / 60).quantize(Decimal("0.01"), ROUND_HALF_UP)


def to_json(day: Day) -> dict[str, Any]:
    """JSON-ready: decimals as numbers, the internal seconds total dropped."""
    out: dict[str, Any] = {}
    for k, v in day.items():
        if k == SECONDS_FIELD:
            continue
        out[k] = float(v) if isinstance(v, Decimal) else v
    return out


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
