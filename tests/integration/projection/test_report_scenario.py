"""The evidence report end to end: the council's scenario written to Kafka, projected by the
real projection service into PostgreSQL, reported over HTTP (PDF rendered to PNG pages and
text with poppler-utils) and by ``dcr report``; a rebuild from the event log gives the same
read models and the same report bytes."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import yaml

from harness.process import run_module
from services.projection.app import create_app as projection_app
from services.projection.figures import days_between
from services.projection.periods import PeriodKind, resolve_period
from shared.settings import REPO_ROOT
from tests.integration.projection.harness import (
    ProjectionProcess,
    produce,
    snapshot,
    wait_caught_up,
)
from tests.integration.projection.report_scenario import ROOM, Scenario, build, referral_day
from tests.openapi_check import conforms
from tests.support import ops_auth
from tests.unit.projection.factory import CITY
from tests.unit.report.pdftools import pdf_pages, pdf_text, row_value

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration
ROOM_TABLES = ("room_daily", "street_collections_daily", "visits", "projection_offsets")


def _city_file(tmp: Path, scenario: Scenario) -> Path:
    data = yaml.safe_load((REPO_ROOT / "deploy" / "city.yaml").read_text(encoding="utf-8"))
    for room in data["facilities"]:
        if room["id"] == ROOM:
            room["opened"] = scenario.opened.isoformat()
    path = tmp / "city.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def _run(module: str, *args: str, env: dict[str, str]) -> tuple[int, str]:
    """``python -m module args`` with ``env`` (a child environment); exit code and output."""
    done = await run_module(module, *args, base=env, timeout=180)
    return done.code, done.out + done.err


def _assert_scenario_figures(text: str, s: Scenario) -> None:
    flat = " ".join(text.split())
    assert row_value(text, "Visits (supervised consumptions)") == "112"
    assert row_value(text, "Distinct people") == "12"  # not the sum of daily uniques (112)
    assert row_value(text, "New people (first visit ever)") == "5"
    assert "Needles 5,880 210.0" in flat  # total and per day: 210 a day
    assert "210.0 a day on average" in flat
    assert row_value(text, "Emergencies treated on site (all kinds)") == "10"
    assert row_value(text, "Life-threatening emergencies") == "6"
    assert row_value(text, "Life-threatening emergencies survived (lives probably saved)") == "6"
    assert row_value(text, "Naloxone doses given") == "12"
    assert row_value(text, "Ambulance calls") == "4"
    assert row_value(text, "Transfers to hospital") == "2"
    assert row_value(text, "Deaths on site") == "0"
    assert "No one died in the rooms in this period." in flat
    assert row_value(text, "Treatment (addiction treatment, opioid substitution)") == "3"
    assert row_value(text, "Housing") == "2"
    assert row_value(text, "Care (medical, mental health)") == "2"
    assert row_value(text, "Returned per needle or syringe handed out") == "74.1%"
    assert f"0.50 kg fewer a day after the opening on {s.opened.isoformat()}" in flat, (
        "street needle drop"
    )
    assert "2.00 kg/day before, 1.50 kg/day after" in flat
    assert row_value(text, "Samples with an unexpected substance") == "1"
    assert "1 drug alert(s) raised in this period." in flat
    assert "Halmtorvet" in flat and "Skelbækgade" in flat


async def _assert_read_models(client: httpx.AsyncClient, s: Scenario, env: TestEnv) -> None:
    """The JSON read models behind the report: per room, per period, street areas."""
    span = {"period": "custom", "from": s.first.isoformat(), "to": s.last.isoformat()}
    for scope in (f"room:{ROOM}", "district:vesterbro", "city"):
        r = await client.get("/v1/periods", params={**span, "scope": scope})
        assert r.status_code == 200, r.text
        figures = r.json()["figures"]
        assert figures["people"] == 12 and figures["visits"] == 112, scope
        assert figures["supplies_dispensed.needles"] == 5880
        assert (figures["incidents"], figures["life_threatening_survived"]) == (10, 6)
        assert figures["deaths"] == 0
    other = await client.get("/v1/periods", params={**span, "scope": "room:maendenes-hjem"})
    assert other.json()["figures"]["visits"] == 0  # per room: not mixed within the district
    day = await client.get(
        f"/v1/rooms/{ROOM}/daily", params={"from": s.first.isoformat(), "to": s.last.isoformat()}
    )
    openapi = projection_app(env.projection())  # the schema: the service is a process
    conforms(openapi, "/v1/rooms/{facility}/daily", day.json())
    days = day.json()["days"]
    assert len(days) == 28 and all(d["supplies_dispensed.needles"] == 210 for d in days)
    assert sum(d["people"] for d in days) == 112  # daily uniques add up to more than 12
    street = await client.get(
        "/v1/street-collections",
        params={"district": "vesterbro", "from": s.first.isoformat(), "to": s.last.isoformat()},
    )
    conforms(openapi, "/v1/street-collections", street.json())
    rows = street.json()["collections"]
    assert {r["area"] for r in rows} == {"Halmtorvet", "Skelbækgade"} and len(rows) == 56
    # the public variant: a closed calendar week (all referrals fall in it)
    week = resolve_period(PeriodKind.WEEK, anchor=referral_day(s.first))
    in_week = sum(1 for d in days_between(s.first, s.last) if week.start <= d <= week.end)
    public = await client.get(
        "/v1/reports",
        params={
            "scope": f"room:{ROOM}",
            "period": "week",
            "anchor": week.start.isoformat(),
            "variant": "public",
            "format": "pdf",
        },
    )
    assert public.status_code == 200, public.text
    with tempfile.TemporaryDirectory() as tmp:
        text = pdf_text(public.content, Path(tmp))
    assert all("PUBLIC - counts of people below 5" in p for p in text.split("\f") if p.strip())
    assert row_value(text, "Housing") == "suppressed"  # 2 people: below the threshold
    # things: shown, with their mean over the week's 7 days (the scenario's four weeks start
    # mid-week when today is a Tuesday or a Wednesday: then its first days are not in them)
    needles = 210 * in_week
    assert f"Needles {needles:,} {needles / 7:.1f}" in " ".join(text.split())
    assert "Visits per day" not in text  # no daily series of people in public


async def test_council_scenario_report(iso_env: TestEnv, tmp_path: Path) -> None:
    now = datetime.now(UTC)  # the scenario's only clock: every time is relative to it
    s = build(now, CITY.zone)
    city_file = _city_file(tmp_path, s)
    env = {"DCR_CITY_FILE": str(city_file)}
    await produce(iso_env.bootstrap, iso_env.topic_prefix, s.events)
    params = {
        "scope": f"room:{ROOM}",
        "period": "custom",
        "from": s.first.isoformat(),
        "to": s.last.isoformat(),
        "variant": "internal",
        "format": "pdf",
    }
    proc = ProjectionProcess(iso_env, tmp_path, **env).start()
    try:
        await proc.wait_healthy()
        await wait_caught_up(iso_env.dsn, iso_env.bootstrap, iso_env.topic_prefix)
        async with httpx.AsyncClient(
            base_url=proc.url, timeout=120, headers=ops_auth(iso_env)
        ) as client:
            r = await client.get("/v1/reports", params=params)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/pdf"
            public_custom = await client.get("/v1/reports", params={**params, "variant": "public"})
            assert public_custom.status_code == 422
            assert public_custom.json()["detail"][0]["loc"] == ["query", "period"]
            bad_scope = await client.get("/v1/reports", params={**params, "scope": "room:x"})
            assert bad_scope.status_code == 422
            assert bad_scope.json()["detail"][0]["loc"] == ["query", "scope"]
            html = await client.get(
                "/v1/reports",
                params={**params, "format": "html", "scope": "district:vesterbro"},
            )
            assert html.status_code == 200
            assert html.headers["content-type"].startswith("text/html")
            assert "Lives probably saved" in html.text
            since = await client.get(
                "/v1/reports",
                params={"scope": f"room:{ROOM}", "period": "since-opening", "variant": "internal"},
            )
            assert since.status_code == 200, since.text
            flat = " ".join(since.text.split())  # the baseline: the days before the opening
            assert f"0.50 kg fewer a day after the opening on {s.opened.isoformat()}" in flat
            await _assert_read_models(client, s, iso_env)
    finally:
        proc.terminate()

    pages = pdf_pages(r.content, tmp_path)
    assert len(pages) >= 5
    text = pdf_text(r.content, tmp_path)
    _assert_scenario_figures(text, s)
    assert all("INTERNAL - NOT FOR PUBLICATION" in p for p in text.split("\f") if p.strip())

    # dcr report, twice around a rebuild: same read models, same bytes
    cli_env = iso_env.env(**env, SOURCE_DATE_EPOCH="1767225600")
    args = ["--scope", f"room:{ROOM}", "--period", "custom", "--from", s.first.isoformat()]
    args += ["--to", s.last.isoformat(), "--variant", "internal", "--format", "pdf"]
    cli = ("services.projection.report.cli", "report", *args)
    code, out = await _run(*cli, "--out", str(tmp_path / "live.pdf"), env=cli_env)
    assert code == 0, out
    live_tables = await snapshot(iso_env.dsn, ROOM_TABLES)
    code, out = await _run("services.projection.rebuild", env=iso_env.env(**env))
    assert code == 0, out
    assert await snapshot(iso_env.dsn, ROOM_TABLES) == live_tables
    code, out = await _run(*cli, "--out", str(tmp_path / "rebuilt.pdf"), env=cli_env)
    assert code == 0, out
    live, rebuilt = (tmp_path / "live.pdf").read_bytes(), (tmp_path / "rebuilt.pdf").read_bytes()
    assert live == rebuilt
    _assert_scenario_figures(pdf_text(live, tmp_path), s)
    code, out = await _run(*cli[:2], "--scope", "room:nowhere", env=cli_env)
    assert code == 2 and "--scope" in out
