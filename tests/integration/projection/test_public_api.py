"""The public API (its own app, port 8005 in deployment) on the real Kafka and PostgreSQL: only
released periods, small counts hidden, the same table on every request, and nothing of the
internal API reachable there.

"Now" is injected: the events are placed around a fixed day far from today, and the public
app's clock is set relative to that day, so the test passes on any day and hour.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.projection.app import create_app as projection_app
from services.projection.bootstrap import ProjectionConfig
from services.projection.public_app import create_app as public_app
from services.projection.settings import ProjectionSettings
from tests.integration.projection.harness import produce, wait_caught_up
from tests.openapi_check import conforms
from tests.support import flatten_table, ops_auth, scrape_auth, serve
from tests.unit.projection.factory import random_stream

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Copenhagen")
#: A Wednesday noon, far from any real "today"; the events fall on the two days before it.
BASE = datetime(2029, 5, 16, 12, 0, tzinfo=ZONE)
DAYS = [date(2029, 5, 14), date(2029, 5, 15)]
DISTRICTS = ["vesterbro", "nordvest", "sydhavn", "amager"]


def _released_at(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(6), ZONE)


async def _internal(client: httpx.AsyncClient, day: date) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in DISTRICTS:
        r = await client.get(
            f"/v1/districts/{d}/daily", params={"from": day.isoformat(), "to": day.isoformat()}
        )
        assert r.status_code == 200, r.text
        out[d] = r.json()["days"][0]
    return out


async def test_released_days_hide_small_counts_and_never_change(
    iso_env: TestEnv,
) -> None:
    released = ProjectionConfig(
        iso_env.platform(), ProjectionSettings(public_since=DAYS[0] - timedelta(days=3))
    )
    events = [e for e in random_stream(seed=11, n=700, base=BASE, days=2)]
    await produce(iso_env.bootstrap, iso_env.topic_prefix, events)
    now = [_released_at(DAYS[0]) - timedelta(minutes=1)]  # the first day is not released yet

    async with (
        serve(projection_app(iso_env.projection()), headers=ops_auth(iso_env)) as internal,
        serve(public_api := public_app(clock=lambda: now[0], config=released)) as public,
    ):
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        r = await public.get(f"/v1/public/day/{DAYS[0]}")
        assert r.status_code == 404 and "released at" in r.json()["detail"]

        now[0] = _released_at(DAYS[1]) + timedelta(hours=1)
        for day in DAYS:
            truth = await _internal(internal, day)
            r = await public.get(f"/v1/public/day/{day}")
            assert r.status_code == 200, r.text
            body = r.json()
            conforms(public_api, "/v1/public/{period}/{start}", body)
            assert body["period"] == "day" and body["from"] == body["to"] == day.isoformat()
            tables = body["tables"]
            assert set(tables) == {"city", *DISTRICTS}
            small = shown = 0
            for d in DISTRICTS:
                published, real = flatten_table(tables[d]), flatten_table(truth[d])
                for name, value in published.items():
                    if name in ("suppressed", "day") or name not in real:
                        continue
                    if value is None:
                        continue
                    shown += 1
                    assert value == real[name], (d, name)  # shown cells are true
                    person = re.match(r"(visits|refusals|incidents|deaths|overdoses)", name)
                    if person and 0 < real[name] < 5:
                        small += 1
            assert small == 0, "a count of 1..4 about people was published"
            assert shown > 0
            again = await public.get(f"/v1/public/day/{day}")
            assert again.json() == body  # decided once, stored: the same table every time

        # a later request, after more events for that day arrived, still gets the stored table
        first = (await public.get(f"/v1/public/day/{DAYS[0]}")).json()
        await produce(
            iso_env.bootstrap,
            iso_env.topic_prefix,
            random_stream(seed=12, n=60, base=BASE - timedelta(days=1), days=1),
        )
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        assert (await public.get(f"/v1/public/day/{DAYS[0]}")).json() == first

        latest = (await public.get("/v1/public/latest")).json()
        conforms(public_api, "/v1/public/latest", latest)
        assert latest["day"] == DAYS[1].isoformat()
        r = await public.get("/v1/public/week/2029-05-15")  # a Tuesday
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "start"]
        r = await public.get("/v1/public/week/2029-05-14")  # not over yet at `now`
        assert r.status_code == 404
        r = await public.get(f"/v1/public/day/{DAYS[0] - timedelta(days=30)}")
        assert r.status_code == 404 and "begin" in r.json()["detail"]


async def test_nothing_internal_is_reachable_on_the_public_app(iso_env: TestEnv) -> None:
    # every route of the internal API (its own schema; /healthz and /metrics both apps have)
    internal_paths = [
        p for p in projection_app(iso_env.projection()).openapi()["paths"] if p != "/healthz"
    ]
    assert len(internal_paths) >= 6
    async with serve(public_app(config=iso_env.projection())) as public:
        for path in internal_paths:
            concrete = (
                path.replace("{district}", "vesterbro")
                .replace("{facility}", "halmtorv")
                .replace("{period}", "day")
            )
            for headers in ({}, ops_auth(iso_env)):
                r = await public.get(concrete, headers=headers)
                assert r.status_code == 404, (path, r.status_code)
        health = await public.get("/healthz")
        assert health.status_code == 200
        assert set(health.json()["checks"]) == {"database"}  # no figures
        assert (await public.get("/metrics")).status_code == 401
        assert (await public.get("/metrics", headers=scrape_auth(iso_env))).status_code == 200
