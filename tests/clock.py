"""Running the clock-sensitive tests as if "now" were another instant (``DCR_TODAY``).

A test whose outcome could depend on the date or the hour is marked ``@pytest.mark.clock``. The
``_travel`` fixture (tests/conftest.py) runs it under :mod:`time_machine`, travelled to each
instant chosen here (the clock ticks on from there): every in-process reader of the wall clock
(``datetime.now``, ``time.time``; not ``time.monotonic``, so asyncio timers are unaffected) sees
that instant - the test itself, the simulator's plans and the services the test runs in-process.

``DCR_TODAY`` chooses the instants, in Copenhagen local time:

* unset (``make test``): unit-level clock tests run at the real now AND at every awkward instant;
  integration clock tests run at the real now only;
* ``awkward`` (``make test-dates``): every clock test at every awkward instant;
* ``2028-02-29T23:30`` (comma-separated list allowed; a bare date means 00:30 and 23:30): every
  clock test at those instants.

What is NOT travelled: PostgreSQL's ``now()``, the Kafka broker, child processes. Tests whose
expectations rely on those take times relative to the real now and are not marked ``clock``.
Kafka refuses record timestamps more than an hour ahead of the broker's clock, so while a date run
travels integration tests, the session's own topics accept timestamps from the future
(:func:`accept_future_timestamps`).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka.admin import TOPIC_CONFIG
from shared.kafka.security import Target, target_kwargs

ZONE = ZoneInfo("Europe/Copenhagen")
ENV = "DCR_TODAY"

#: Local days on which calendar logic goes wrong, with why (tests/unit/test_clock.py checks the
#: reasons hold).
AWKWARD_DAYS: dict[str, date] = {
    "sunday": date(2026, 11, 29),  # the day CI went red (weekend curve)
    "dst-spring": date(2027, 3, 28),  # last Sunday of March: 02:00 -> 03:00, a 23-hour day
    "dst-autumn": date(2026, 10, 25),  # last Sunday of October: 03:00 -> 02:00, a 25-hour day
    "new-years-eve": date(2026, 12, 31),  # month and year end
    "leap-day": date(2028, 2, 29),
    "payday": date(2027, 4, 30),  # last banking day of April 2027: the payday surge starts
}
#: Just after midnight and just before it, local time.
AWKWARD_TIMES = (time(0, 30), time(23, 30))


def awkward_instants() -> list[datetime]:
    return [
        datetime.combine(day, t, tzinfo=ZONE)
        for day in AWKWARD_DAYS.values()
        for t in AWKWARD_TIMES
    ]


def parse_instants(text: str) -> list[datetime]:
    """``awkward``, or comma-separated local ``YYYY-MM-DD`` / ``YYYY-MM-DDTHH:MM``."""
    if text.strip() == "awkward":
        return awkward_instants()
    out: list[datetime] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if "T" in part:
            parsed = datetime.fromisoformat(part)
            out.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=ZONE))
        else:
            day = date.fromisoformat(part)
            out.extend(datetime.combine(day, t, tzinfo=ZONE) for t in AWKWARD_TIMES)
    if not out:
        raise ValueError(f"{ENV}={text!r}: give 'awkward' or local dates/times")
    return out


_taken: str | None = None


def take_request(environ: MutableMapping[str, str]) -> None:
    """Read ``DCR_TODAY`` once (tests/conftest.py, at configure time) and remove it from the
    environment: nothing the tests run (dcr-sim's dry runs, child processes, which are not
    travelled) must take the test session's request for its own."""
    global _taken
    _taken = environ.pop(ENV, "").strip()


def requested_instants() -> list[datetime] | None:
    """The instants ``DCR_TODAY`` asks for, or None when it is unset (real time)."""
    text = _taken if _taken is not None else os.environ.get(ENV, "").strip()
    return parse_instants(text) if text else None


def instant_id(at: datetime | None) -> str:
    return "now" if at is None else at.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


def instants_for(integration: bool) -> list[datetime | None]:
    """Where a clock test runs (None = the real now); see the module docstring."""
    requested = requested_instants()
    if requested is not None:
        return list(requested)
    if integration:
        return [None]
    return [None, *awkward_instants()]


async def accept_future_timestamps(bootstrap: Target, prefix: str) -> None:
    """Let the topics named ``prefix*`` accept record timestamps from any future (a travelled
    test process stamps its records with its own clock). Only called during a date run."""
    admin = AIOKafkaAdminClient(**target_kwargs(bootstrap))
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        config = {**TOPIC_CONFIG, "message.timestamp.after.max.ms": str(2**63 - 1)}
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, configs=config) for t in mine]
        )
    finally:
        await admin.close()
