"""Simulator plans shared by the unit tests and the end-to-end test (tests/integration/simulator).

:func:`busy_plan` is the last ``HOURS`` before ``now`` at one facility open around the clock,
with the calendar switched off: no weekend or payday multiplier, no day-to-day noise, the same
arrival rate at every hour. How much it produces therefore does not depend on the weekday, the
hour, a DST change or a payday - only on the seed's draws - so tests can expect it on any day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.simulator.cli import Plan
from services.simulator.model import Service
from services.simulator.params import SimParams
from shared.city import load_city
from shared.settings import CitySettings

FACILITY = "maendenes-hjem"  # open 24/7: traffic whatever the time of day
VISITS_PER_DAY = 240.0
HOURS = 4


def busy_plan(now: datetime, *, seed: int = 20261128) -> Plan:
    # Enough of everything to touch every topic, without overdoses or adulterants: those raise
    # drug alerts, which the ingest tests count per district.
    params = SimParams(
        visits_per_day={FACILITY: VISITS_PER_DAY},
        weekend_multiplier=1.0,
        payday_multiplier=1.0,
        day_noise_sigma=0.0,
        hourly_weights=(1.0,) * 24,  # as busy at night as by day
        overdoses_per_1000=0,
        adulterant_share=0,
        other_incidents_per_1000=50,
        drug_check_share=0.2,
        referrals_per_100=10,
        street_sweeps_per_day=24,
        sharps_every_h=1,
    )
    end = now.astimezone(UTC).replace(microsecond=0)
    return Plan(
        city=load_city(CitySettings().file),
        params=params,
        seed=seed,
        start=end - timedelta(hours=HOURS),
        end=end,
        facilities=(FACILITY,),
        services=frozenset(Service),
        street=True,
        speed=1e6,
    )
