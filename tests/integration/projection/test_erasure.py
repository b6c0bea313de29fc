"""Issue 13, the right to erasure on the real Kafka and PostgreSQL: ``python -m
services.projection.erase`` (``make erase``) takes a client code on stdin, leaves no row that
holds its pseudonym (visits, idempotency envelopes, dedup copies of events), keeps every aggregate
as published, and a rebuild from Kafka (which still holds the person's records until their
retention) neither brings the pseudonym back nor changes any table."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

import asyncpg
import pytest

from harness.process import run_module
from services.projection.app import create_app as projection_app
from services.projection.erasure import ERASED_KEY, erased_digest
from services.projection.store import READ_MODEL_TABLES
from shared.events import payloads as p
from shared.events.envelope import Envelope
from shared.events.vocabulary import Route, Substance
from shared.privacy import Pseudonymiser
from tests.integration.projection.harness import produce, rows, snapshot, wait_caught_up
from tests.support import serve
from tests.unit.projection import factory as f
from tests.unit.projection.factory import CITY

if TYPE_CHECKING:
    from tests.support import TestEnv

pytestmark = pytest.mark.integration
AGGREGATES = ("district_daily", "district_daily_breakdown", "facility_daily", "city_daily")
TABLES = (*READ_MODEL_TABLES, "projection_offsets")
CODE = "HT-4711"


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=CITY.zone)


def start(visit_id: str, at: datetime, pseudonym: str, facility: str = "halmtorv") -> Envelope:
    return f.wrap(
        p.VisitStarted(
            visit_id=visit_id,
            client_pseudonym=pseudonym,
            pseudonym_key="k1",
            substances=(Substance.HEROIN,),
            route=Route.INJECT,
        ),
        at,
        facility,
    )


async def holders(dsn: str, pseudonym: str) -> dict[str, int]:
    """How many rows of each person-level store still hold ``pseudonym``."""
    out: dict[str, int] = {}
    for table, sql in {
        "visits": "SELECT count(*) FROM visits WHERE client_pseudonym = $1",
        "ingest_idempotency": "SELECT count(*) FROM ingest_idempotency "
        "WHERE strpos(envelope, $1) > 0",
        "projection_events": "SELECT count(*) FROM projection_events "
        "WHERE position(convert_to($1, 'UTF8') IN value) > 0",
    }.items():
        [(n,)] = await rows(dsn, sql, pseudonym)
        out[table] = n
    return out


async def test_erase_then_rebuild_keeps_the_person_out_and_the_aggregates_as_published(
    iso_env: TestEnv,
) -> None:
    secret = iso_env.run.pseudonym_secret.get_secret_value().encode()
    erased = Pseudonymiser(secret, "k1").pseudonym("halmtorv", CODE)
    same_code_other_room = Pseudonymiser(secret, "k1").pseudonym("nordvest", CODE)
    today = datetime.now(CITY.zone).date()
    day, only_them = today - timedelta(days=3), today - timedelta(days=2)
    events = [
        start("e-1", local(day, 10), erased),
        f.visit_ended("e-1", local(day, 10, 30)),
        start("e-2", local(day, 15), erased),
        start("o-1", local(day, 11), f.pseudonym(5)),
        f.visit_ended("o-1", local(day, 11, 50)),
        start("n-1", local(day, 12), same_code_other_room, facility="nordvest"),
        start("e-3", local(only_them, 9), erased),  # a day on which only they came
        f.visit_ended("e-3", local(only_them, 9, 20)),
    ]
    conn = await asyncpg.connect(iso_env.dsn)
    try:  # an ingest idempotency record as the intake keeps it (the published envelope)
        await conn.execute(
            """INSERT INTO ingest_idempotency (scope, key, fingerprint, envelope, response)
               VALUES ('halmtorv', 'k-1', 'x', $1, '{}'::jsonb)""",
            events[0].model_dump_json(),
        )
    finally:
        await conn.close()
    async with serve(projection_app(iso_env.projection())):
        await produce(iso_env.bootstrap, iso_env.topic_prefix, events)
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
    published = await snapshot(iso_env.dsn, AGGREGATES)
    assert await holders(iso_env.dsn, erased) == {
        "visits": 3,
        "ingest_idempotency": 1,
        "projection_events": 3,
    }
    [(unique,)] = await rows(
        iso_env.dsn, "SELECT unique_clients FROM city_daily WHERE day = $1", day
    )
    assert unique == 3  # the erased pseudonym, another person, the same code in another room

    done = await run_module(
        "services.projection.erase",
        "--facility",
        "halmtorv",
        base=iso_env.env(),
        stdin=f"{CODE}\n".encode(),
    )
    assert done.code == 0, done.err
    assert CODE not in done.out + done.err and erased not in done.out + done.err
    assert "'visits_anonymised': 3" in done.out

    assert await holders(iso_env.dsn, erased) == {
        "visits": 0,
        "ingest_idempotency": 0,
        "projection_events": 0,
    }
    assert await rows(iso_env.dsn, "SELECT digest FROM erased_pseudonyms") == [
        (erased_digest("k1", erased),)
    ]
    anonymised = await rows(
        iso_env.dsn, "SELECT client_pseudonym FROM visits WHERE pseudonym_key = $1", ERASED_KEY
    )
    assert len(anonymised) == 3 and len({a for (a,) in anonymised}) == 1
    # only the room that issued the code: the same code in another room is another person
    assert (await holders(iso_env.dsn, same_code_other_room))["visits"] == 1
    assert await snapshot(iso_env.dsn, AGGREGATES) == published

    live = await snapshot(iso_env.dsn, TABLES)
    rebuilt = await run_module("services.projection.rebuild", base=iso_env.env())
    assert rebuilt.code == 0, rebuilt.err
    assert await holders(iso_env.dsn, erased) == {
        "visits": 0,
        "ingest_idempotency": 0,
        "projection_events": 0,
    }
    assert await snapshot(iso_env.dsn, TABLES) == live
    assert await snapshot(iso_env.dsn, AGGREGATES) == published


@pytest.mark.parametrize(
    ("args", "stdin", "why"),
    [
        ((), f"{CODE}\n", "name the room"),  # facility scope: which room issued the code
        (("--facility", "nowhere"), f"{CODE}\n", "unknown facility"),
        (("--facility", "halmtorv"), "\n", "client code is empty"),
    ],
)
async def test_erase_refuses_what_it_cannot_do_safely(
    iso_env: TestEnv, args: tuple[str, ...], stdin: str, why: str
) -> None:
    done = await run_module(
        "services.projection.erase", *args, base=iso_env.env(), stdin=stdin.encode()
    )
    assert done.code == 2 and why in done.err
    assert CODE not in done.out + done.err
    assert await rows(iso_env.dsn, "SELECT count(*) FROM erased_pseudonyms") == [(0,)]


async def test_erase_without_a_pseudonym_secret_refuses_and_shows_no_secret(
    iso_env: TestEnv,
) -> None:
    weak = "0123456789abcdef" * 2  # refused as too weak: the refusal must not print it
    done = await run_module(
        "services.projection.erase",
        "--facility",
        "halmtorv",
        base=iso_env.env(DCR_PSEUDONYM_SECRET=weak),
        stdin=f"{CODE}\n".encode(),
    )
    assert done.code == 2 and "DCR_PSEUDONYM_SECRET is too weak" in done.err
    assert weak not in done.out + done.err and CODE not in done.out + done.err
