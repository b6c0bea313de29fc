"""The evidence report as a document model (pure: figures in, blocks out; no I/O, no rendering).

:func:`build_document` turns a :class:`ReportInput` (the read models' figures for one scope and
period) into a :class:`Document` that the HTML and PDF renderers draw the same way. Every number
shown is taken from the input tables as they are (no estimation), so the report equals the read
models; the public variant shows ``suppressed`` for the cells :func:`hidden_cells` hides, and any
rate computed from a hidden cell is hidden too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from services.projection.period_figures import Cells
from services.projection.period_queries import DaySeries, LogPosition, StreetArea, StreetDay
from services.projection.periods import Period, Scope
from services.projection.report.stats import Change, before_after
from shared.events.vocabulary import ReferralKind, Substance, SupplyItem

SUPPRESSED = "suppressed"


class Variant(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class ReportInput:
    scope: Scope
    scope_name: str
    period: Period
    variant: Variant
    threshold: int
    #: The scope's table (see period_figures) and the hidden cells of the public release.
    table: Cells
    hidden: frozenset[str]
    series: DaySeries
    street: dict[date, StreetDay]
    street_district_names: tuple[str, ...]
    areas: tuple[StreetArea, ...]
    alerts: tuple[dict[str, Any], ...]
    opened: date | None
    position: LogPosition
    build_time: datetime
    city_timezone: str


@dataclass(frozen=True, slots=True)
class KeyFigure:
    label: str
    value: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    """A daily series; ``kind`` 'bars' (counts) or 'street' (kg with the opening marked)."""

    name: str
    title: str
    kind: str
    days: tuple[date, ...]
    values: tuple[float | None, ...]
    ylabel: str
    marker: date | None = None
    change: Change | None = None


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


Block = KeyFigure | Table | Chart | Paragraph


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    blocks: tuple[Block, ...]
    #: Start this section on a new page (PDF).
    new_page: bool = False


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    subtitle: str
    #: Printed on every page: which variant this is and what that means.
    banner: str
    footer: str
    sections: tuple[Section, ...]
    build_time: datetime
    key_figures: tuple[KeyFigure, ...] = field(default=())


def fmt_int(v: Decimal | int) -> str:
    return f"{int(v):,}"


def fmt_num(v: float | Decimal, places: int = 1) -> str:
    return f"{float(v):,.{places}f}"


class _Cells:
    """The scope's cells as text, ``suppressed`` where hidden."""

    def __init__(self, inp: ReportInput) -> None:
        self.table = inp.table
        self.hidden = inp.hidden

    def shown(self, *names: str) -> bool:
        return not any(n in self.hidden for n in names)

    def get(self, name: str) -> str:
        return fmt_int(self.table[name]) if self.shown(name) else SUPPRESSED

    def value(self, name: str) -> Decimal:
        return self.table[name]

    def total(self, *names: str) -> str:
        if not self.shown(*names):
            return SUPPRESSED
        return fmt_int(sum((self.table[n] for n in names), Decimal(0)))


REFERRAL_GROUPS: tuple[tuple[str, tuple[ReferralKind, ...]], ...] = (
    (
        "Treatment (addiction treatment, opioid substitution)",
        (ReferralKind.ADDICTION_TREATMENT, ReferralKind.OPIOID_SUBSTITUTION),
    ),
    ("Housing", (ReferralKind.HOUSING,)),
    ("Care (medical, mental health)", (ReferralKind.MEDICAL_CARE, ReferralKind.MENTAL_HEALTH)),
    ("Social services", (ReferralKind.SOCIAL_SERVICES,)),
    ("Other", (ReferralKind.OTHER,)),
)


def build_document(inp: ReportInput) -> Document:
    c = _Cells(inp)
    period = inp.period
    banner = (
        "INTERNAL - NOT FOR PUBLICATION: small counts are shown as they are"
        if inp.variant is Variant.INTERNAL
        else f"PUBLIC - counts of people below {inp.threshold} are suppressed"
    )
    key = _key_figures(inp, c)
    sections = [
        Section("At a glance", (*key, *_glance_notes(inp, c))),
        _people_section(inp, c),
        _safety_section(c),
        _referrals_section(c),
        _supplies_section(inp, c),
        _street_section(inp),
        _drug_checking_section(inp, c),
        _methods_section(inp),
    ]
    pos = inp.position
    footer = (
        f"Built from the event log at {pos.records:,} records "
        f"(data complete until {_when(pos.complete_until, inp)}); "
        f"built {_when(inp.build_time, inp)}"
    )
    return Document(
        title=f"Supervised drug consumption rooms: {inp.scope_name}",
        subtitle=_subtitle(period),
        banner=banner,
        footer=footer,
        sections=tuple(sections),
        build_time=inp.build_time,
        key_figures=key,
    )


def _subtitle(period: Period) -> str:
    span = f"{period.start.isoformat()} to {period.end.isoformat()}"
    if span in period.label:
        return f"Evidence report for {period.label}, {period.days} days"
    return f"Evidence report for {period.label} ({period.days} days, {span})"


def _when(t: datetime | None, inp: ReportInput) -> str:
    if t is None:
        return "no data"
    return t.astimezone(ZoneInfo(inp.city_timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _per_day(total: Decimal, days: int) -> str:
    return fmt_num(total / days) if days else "-"


def _key_figures(inp: ReportInput, c: _Cells) -> tuple[KeyFigure, ...]:
    deaths = c.value("deaths")
    deaths_text = c.get("deaths")
    deaths_note = (
        "No one died in the rooms in this period."
        if c.shown("deaths") and deaths == 0
        else "Deaths on site in this period."
    )
    needles = c.value("supplies_dispensed.needles")
    return (
        KeyFigure("Visits", c.get("visits"), "supervised consumptions registered"),
        KeyFigure("Distinct people", c.get("people"), "counted once over the whole period"),
        KeyFigure("New people", c.get("new_people"), "first visit ever at the room"),
        KeyFigure(
            "Clean needles handed out",
            fmt_int(needles),
            f"{_per_day(needles, inp.period.days)} a day on average",
        ),
        KeyFigure(
            "Emergencies treated on site",
            c.get("incidents"),
            f"of which overdoses: {c.get('overdoses')}",
        ),
        KeyFigure(
            "Life-threatening emergencies",
            c.get("life_threatening"),
            "staff judged the person would probably have died untreated",
        ),
        KeyFigure(
            "Lives probably saved",
            c.get("life_threatening_survived"),
            "life-threatening emergencies the person survived",
        ),
        KeyFigure("Deaths on site", deaths_text, deaths_note),
    )


def _glance_notes(inp: ReportInput, c: _Cells) -> tuple[Block, ...]:
    change = _street_change(inp)
    if change is None:
        return ()
    word = "fewer" if change.difference < 0 else "more"
    ci = (
        f" (95% confidence interval {fmt_num(change.low, 2)} to {fmt_num(change.high, 2)})"
        if change.low is not None and change.high is not None
        else ""
    )
    return (
        Paragraph(
            f"Street needle collections in {', '.join(inp.street_district_names)}: "
            f"{fmt_num(abs(change.difference), 2)} kg {word} a day after the opening on "
            f"{inp.opened.isoformat() if inp.opened else '-'}{ci}: "
            f"{fmt_num(change.before.mean, 2)} kg/day before, "
            f"{fmt_num(change.after.mean, 2)} kg/day after."
        ),
    )


def _people_section(inp: ReportInput, c: _Cells) -> Section:
    rows = (
        ("Visits (supervised consumptions)", c.get("visits")),
        ("Distinct people", c.get("people")),
        ("New people (first visit ever)", c.get("new_people")),
        ("Assisted injections", c.get("assisted_injections")),
        ("Visits refused", c.get("refusals")),
    )
    blocks: list[Block] = [Table(("Figure", "Number"), rows)]
    if inp.variant is Variant.INTERNAL:
        blocks.append(_daily_chart("visits", "Visits per day", inp, inp.series.visits, "visits"))
    return Section("Visits and people", tuple(blocks), new_page=True)


def _safety_section(c: _Cells) -> Section:
    per_k = SUPPRESSED
    if c.shown("overdoses", "visits") and c.value("visits") > 0:
        per_k = fmt_num(c.value("overdoses") * 1000 / c.value("visits"), 2)
    rows = (
        ("Emergencies treated on site (all kinds)", c.get("incidents")),
        ("  of which overdoses (opioid overdose, stimulant overamping)", c.get("overdoses")),
        (
            "  of which other medical emergencies and incidents",
            c.total(
                *[
                    f"incidents.{k}"
                    for k in (
                        "wrong_drug_or_adulterant",
                        "seizure",
                        "other_medical",
                        "violence",
                        "other",
                    )
                ]
            ),
        ),
        ("Overdoses per 1,000 visits", per_k),
        ("Life-threatening emergencies", c.get("life_threatening")),
        (
            "Life-threatening emergencies survived (lives probably saved)",
            c.get("life_threatening_survived"),
        ),
        ("Naloxone doses given", c.get("naloxone_doses")),
        ("Ambulance calls", c.get("ambulance_calls")),
        ("Transfers to hospital", c.get("hospital_transfers")),
        ("Recovered on site", c.get("incident_outcomes.recovered_on_site")),
        ("Deaths on site", c.get("deaths")),
    )
    return Section("Emergencies and safety", (Table(("Figure", "Number"), rows),))


def _referrals_section(c: _Cells) -> Section:
    rows: list[tuple[str, str]] = []
    for label, kinds in REFERRAL_GROUPS:
        rows.append((label, c.total(*[f"referrals.{k.value}" for k in kinds])))
    rows.append(("All referrals", c.get("referrals")))
    services = tuple(
        (name, c.get(f"services.{key}"))
        for name, key in (
            ("Wound care", "wound_care"),
            ("Infection testing", "infection_testing"),
            ("Counselling", "counselling"),
            ("Drug checking", "drug_checking"),
            ("Other", "other"),
        )
    )
    return Section(
        "Referrals and services",
        (
            Table(("Referred to", "Referrals"), tuple(rows)),
            Table(("On-site service", "Times"), services),
        ),
    )


def _supplies_section(inp: ReportInput, c: _Cells) -> Section:
    days = inp.period.days
    rows = tuple(
        (
            item.value.replace("_", " ").capitalize(),
            fmt_int(c.value(f"supplies_dispensed.{item.value}")),
            _per_day(c.value(f"supplies_dispensed.{item.value}"), days),
        )
        for item in SupplyItem
    )
    out = c.value("supplies_dispensed.needles") + c.value("supplies_dispensed.syringes")
    returned = c.value("sharps_returned_count")
    ratio = f"{fmt_num(returned * 100 / out, 1)}%" if out > 0 else "-"
    sharps = (
        ("Sharps returned (count)", fmt_int(returned)),
        ("Sharps returned (kg)", fmt_num(c.value("sharps_returned_kg"), 2)),
        ("Returned per needle or syringe handed out", ratio),
    )
    return Section(
        "Needles and other supplies",
        (
            Table(("Item handed out", "Total", "Per day"), rows),
            Table(("Sharps", "Number"), sharps),
            _daily_chart(
                "needles", "Clean needles handed out per day", inp, inp.series.needles, "needles"
            ),
        ),
        new_page=False,
    )


def _street_change(inp: ReportInput) -> Change | None:
    if inp.opened is None:
        return None
    before = [float(s.kg) for d, s in sorted(inp.street.items()) if d < inp.opened]
    after = [float(s.kg) for d, s in sorted(inp.street.items()) if d >= inp.opened]
    return before_after(before, after)


def _street_section(inp: ReportInput) -> Section:
    days = tuple(d for d in _days(inp.period) if d in inp.street)
    change = _street_change(inp)
    blocks: list[Block] = [
        Chart(
            "street",
            f"Needles collected from the streets of {', '.join(inp.street_district_names)}",
            "street",
            days,
            tuple(float(inp.street[d].kg) for d in days),
            "kg per day",
            marker=inp.opened
            if inp.opened and days and days[0] <= inp.opened <= inp.period.end
            else None,
            change=change,
        )
    ]
    if change is not None:
        rows = [
            (
                "Before the opening",
                str(change.before.n),
                fmt_num(change.before.mean, 2),
                _ci(change.before.low, change.before.high),
            ),
            (
                "After the opening",
                str(change.after.n),
                fmt_num(change.after.mean, 2),
                _ci(change.after.low, change.after.high),
            ),
            (
                "Change (after - before)",
                "",
                fmt_num(change.difference, 2),
                _ci(change.low, change.high),
            ),
        ]
        blocks.append(
            Table(("Days with collections", "Days", "Mean kg/day", "95% CI"), tuple(rows))
        )
    elif inp.opened is None:
        blocks.append(Paragraph("No room of this scope has opened: no before/after comparison."))
    else:
        blocks.append(
            Paragraph(
                "Not enough collection days on both sides of the opening in this period for a "
                "before/after comparison (a since-opening report compares with the days before)."
            )
        )
    area_rows = tuple(
        (a.district, a.area, fmt_int(a.reports), fmt_int(a.needles), fmt_num(a.kg, 2))
        for a in inp.areas
    )
    blocks.append(
        Table(
            ("District", "Area", "Reports", "Needles", "kg"),
            area_rows,
            "" if area_rows else "No collections reported in this period.",
        )
    )
    return Section("Needles on the streets", tuple(blocks), new_page=True)


def _ci(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"{fmt_num(low, 2)} to {fmt_num(high, 2)}"


def _drug_checking_section(inp: ReportInput, c: _Cells) -> Section:
    rows: list[tuple[str, str]] = [
        ("Samples checked", c.get("drug_checks")),
        ("Samples with an unexpected substance", c.get("drug_checks_unexpected")),
    ]
    for s in Substance:
        name = f"unexpected_substances.{s.value}"
        if c.value(name) != 0 or name in c.hidden:
            rows.append((f"  found unexpectedly: {s.value.replace('_', ' ')}", c.get(name)))
    alerts = tuple(
        (
            _when(a["raised_at"], inp)
            if inp.variant is Variant.INTERNAL
            else _when(a["raised_at"], inp)[:10],  # public: the day only
            a["district"],
            str(a["reason"]).replace("_", " "),
            str(a["substance"] or "-").replace("_", " "),
        )
        for a in inp.alerts
    )
    return Section(
        "Drug checking and alerts",
        (
            Table(("Figure", "Number"), tuple(rows)),
            Table(
                ("Alert raised", "District", "Reason", "Substance"),
                alerts,
                f"{len(alerts)} drug alert(s) raised in this period."
                if alerts
                else "No drug alerts were raised in this period.",
            ),
        ),
    )


def _daily_chart(
    name: str, title: str, inp: ReportInput, values: dict[date, int], ylabel: str
) -> Chart:
    days = tuple(_days(inp.period))
    return Chart(
        name,
        title,
        "bars",
        days,
        tuple(float(values.get(d, 0)) for d in days),
        ylabel,
        marker=inp.opened
        if inp.opened and inp.period.start <= inp.opened <= inp.period.end
        else None,
    )


def _days(period: Period) -> Sequence[date]:
    return [period.start + timedelta(days=i) for i in range(period.days)]


def _methods_section(inp: ReportInput) -> Section:
    pos = inp.position
    offsets = tuple((t, str(p), fmt_int(o)) for t, p, o in pos.offsets)
    suppression = (
        f"Public variant: a count of people from 1 to {inp.threshold - 1} is not shown "
        "('suppressed'), and further cells are hidden wherever a hidden count could be "
        "recovered by subtraction (a total and its parts, a district and its rooms, the city and "
        "its districts). Supplies, sharps and street needles are amounts of things and are "
        "shown as they are. Only closed calendar periods (week, month, quarter, year, ended "
        "before the report was built) are published, so that overlapping periods cannot be "
        "subtracted from each other."
        if inp.variant is Variant.PUBLIC
        else "Internal variant: NO suppression is applied; small counts are shown as they are. "
        "Do not publish this report or quote its small counts outside the service."
    )
    return Section(
        "Methods and definitions",
        (
            Paragraph(
                "Visits: supervised consumptions registered on arrival (one per consumption). "
                "Days are calendar days in Copenhagen time; a visit belongs to the day it started."
            ),
            Paragraph(
                "Distinct people: different client pseudonyms among the period's visits, each "
                "counted once over the whole period (not a sum of daily counts). Codes are "
                "pseudonymised per room, so a person using two rooms counts once in each. New "
                "people: distinct people whose visit was registered as their first ever."
            ),
            Paragraph(
                "Emergencies: incidents staff treated on site. Overdoses are opioid overdoses and "
                "stimulant overamping. Life-threatening: staff judged that the person would "
                "probably have died without treatment. Lives probably saved: life-threatening "
                "emergencies in which the person survived (any outcome other than death); it is "
                "staff's clinical judgement, not a modelled estimate of deaths averted."
            ),
            Paragraph(
                "Clean needles: the item 'needles' handed out. Sharps returned ratio: sharps "
                "returned (count) per needle or syringe handed out in the same period."
            ),
            Paragraph(
                "Street needles: weight collected by the city's sanitation teams in the scope's "
                "district(s). Before/after means are over days with at least one collection "
                "report, before and from the room's opening day (a since-opening report takes "
                "as many days before the opening as it has after, at most 366); 95% confidence "
                "intervals by Student's t (each side) and Welch's t (the change), treating days "
                "as independent. A before/after difference is not proof of cause: other "
                "changes in the area (policing, weather, construction) may contribute."
            ),
            Paragraph(suppression),
            Paragraph(
                f"Data completeness: the read models had applied {pos.records:,} records of the "
                f"event log; events received until {_when(pos.complete_until, inp)} are "
                "included. Every figure equals the read models and a rebuild of them from the "
                "event log at this position."
            ),
            Table(("Event-log topic", "Partition", "Next offset"), offsets),
        ),
        new_page=True,
    )
