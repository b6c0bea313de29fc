"""A report input built from chosen figures (no database), for the renderer tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.projection.period_figures import complete
from services.projection.period_queries import DaySeries, LogPosition, StreetArea, StreetDay
from services.projection.periods import Period, PeriodKind, Scope
from services.projection.report.document import ReportInput, Variant

START = date(2026, 3, 1)
DAYS = 31
OPENED = date(2026, 3, 15)
BUILD_TIME = datetime(2026, 4, 2, 8, 30, tzinfo=UTC)


def sample_input(
    variant: Variant = Variant.INTERNAL, hidden: frozenset[str] = frozenset()
) -> ReportInput:
    days = [START + timedelta(days=i) for i in range(DAYS)]
    raw = {
        "visits": Decimal(3100),
        "people": Decimal(412),
        "new_people": Decimal(37),
        "assisted_injections": Decimal(55),
        "supplies_dispensed.needles": Decimal(210 * DAYS),
        "supplies_dispensed.syringes": Decimal(150 * DAYS),
        "supplies_dispensed.swabs": Decimal(400 * DAYS),
        "sharps_returned_count": Decimal(5000),
        "sharps_returned_kg": Decimal("12.5"),
        "incidents.opioid_overdose": Decimal(8),
        "incidents.seizure": Decimal(2),
        "incident_outcomes.recovered_on_site": Decimal(7),
        "incident_outcomes.transferred_to_hospital": Decimal(3),
        "overdoses": Decimal(8),
        "life_threatening": Decimal(6),
        "life_threatening_survived": Decimal(6),
        "naloxone_doses": Decimal(9),
        "ambulance_calls": Decimal(3),
        "hospital_transfers": Decimal(3),
        "referrals.addiction_treatment": Decimal(12),
        "referrals.housing": Decimal(4),
        "referrals.medical_care": Decimal(9),
        "services.wound_care": Decimal(40),
        "drug_checks": Decimal(25),
        "drug_checks_unexpected": Decimal(3),
        "unexpected_substances.fentanyl": Decimal(3),
    }
    street = {
        d: StreetDay(
            1, 0, Decimal("2.0") + Decimal(i % 3) / 10 - (Decimal("0.5") if d >= OPENED else 0)
        )
        for i, d in enumerate(days)
    }
    return ReportInput(
        scope=Scope("room", "halmtorv"),
        scope_name="Halmtorv (temporary room)",
        period=Period(PeriodKind.MONTH, START, START + timedelta(days=DAYS - 1)),
        variant=variant,
        threshold=5,
        table=complete(raw),
        hidden=hidden,
        series=DaySeries({d: 100 for d in days}, {d: 210 for d in days}),
        street=street,
        street_district_names=("Vesterbro",),
        areas=(StreetArea("vesterbro", "Halmtorvet", 31, 0, Decimal("52.4")),),
        alerts=(),
        opened=OPENED,
        position=LogPosition((("dcr.visits", 0, 3100), ("dcr.supplies", 0, 900)), BUILD_TIME),
        build_time=BUILD_TIME,
        city_timezone="Europe/Copenhagen",
    )
