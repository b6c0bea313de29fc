"""dcr-sim's command line: time options, parameters, tokens, dry run, progress and summary."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.simulator.cli import (
    CATCH_UP_SPEED,
    FAST_SPEED,
    Plan,
    UsageError,
    build_parser,
    format_summary,
    load_tokens,
    main,
    make_plan,
    parse_duration,
    parse_start,
    plan_now,
    run_plan,
)
from services.simulator.model import Service
from shared.city import load_city
from shared.settings import CitySettings

CITY = load_city(CitySettings().file)
NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)


def plan(*argv: str, now: datetime = NOW) -> Plan:
    return make_plan(build_parser().parse_args(list(argv)), now, CITY)


def test_durations_and_starts() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("1.5d") == timedelta(hours=36)
    assert parse_duration("3600") == timedelta(hours=1)
    with pytest.raises(UsageError):
        parse_duration("soon")
    zone = CITY.zone
    assert parse_start("now", zone, NOW) == NOW
    assert parse_start("today", zone, NOW) == datetime(2026, 11, 27, tzinfo=zone)
    assert parse_start("2026-11-20", zone, NOW) == datetime(2026, 11, 20, tzinfo=zone)
    assert parse_start("2026-11-20T08:00", zone, NOW) == datetime(2026, 11, 20, 8, tzinfo=zone)
    assert parse_start("2026-11-20T08:00Z", zone, NOW) == datetime(2026, 11, 20, 8, tzinfo=UTC)


def test_a_bounded_run_ends_now_and_runs_fast() -> None:
    p = plan("--days", "1")
    assert (p.start, p.end, p.speed) == (NOW - timedelta(days=1), NOW, FAST_SPEED)
    assert p.facilities == tuple(f.id for f in CITY.facilities)


def test_the_default_run_backfills_today_then_goes_on() -> None:
    p = plan()
    assert p.start == datetime(2026, 11, 27, tzinfo=CITY.zone) and p.end is None
    assert p.speed == CATCH_UP_SPEED


def test_options_reach_the_plan() -> None:
    p = plan(
        "--facilities",
        "halmtorv,amager",
        "--duration",
        "6h",
        "--speed",
        "60",
        "--overdoses-per-1000",
        "20",
        "--set",
        "street_needles_mean.vesterbro=80",
        "--services",
        "intake,supply",
        "--no-street",
    )
    assert p.facilities == ("halmtorv", "amager") and p.end == NOW and p.speed == 60
    assert p.params.overdoses_per_1000 == 20
    assert p.params.street_needles_mean["vesterbro"] == 80
    assert p.params.street_needles_mean["amager"] == 12  # the other defaults stay
    assert p.services == {Service.INTAKE, Service.SUPPLY} and not p.street
    assert {r.service for r in p.reports()} <= {Service.INTAKE, Service.SUPPLY}
    assert p.principals() == {"halmtorv", "amager"}


def test_parameters_from_a_yaml_file(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("overdoses_per_1000: 3\nbooths: {halmtorv: 24}\n")
    p = plan("--params", str(f), "--set", "overdoses_per_1000=4", "--days", "1")
    assert p.params.overdoses_per_1000 == 4 and p.params.booths == {"halmtorv": 24}


@pytest.mark.parametrize(
    "argv",
    [
        ["--facilities", "nowhere"],
        ["--set", "nonsense=1"],
        ["--set", "hospital_share=0.5"],  # more than the ambulance share
        ["--start", "2026-10-01"],  # beyond the 30-day horizon of the APIs
        ["--days", "0"],
        ["--services", "intake,mail"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        plan(*argv)


def test_the_run_id_depends_on_everything_the_stream_depends_on() -> None:
    base = plan("--start", "2026-11-26", "--days", "1")
    assert base.run_id == plan("--start", "2026-11-26", "--days", "1").run_id
    assert base.run_id != plan("--start", "2026-11-26", "--days", "1", "--seed", "2").run_id
    assert base.run_id != plan("--start", "2026-11-25", "--days", "1").run_id
    other = plan("--start", "2026-11-26", "--days", "1", "--set", "overdoses_per_1000=9")
    assert base.run_id != other.run_id


def test_tokens(tmp_path: Path) -> None:
    f = tmp_path / "dev-tokens.yaml"
    f.write_text("halmtorv: abc\nsanitation-city: def\n")
    assert load_tokens(f, {"halmtorv"})["halmtorv"] == "abc"
    with pytest.raises(UsageError, match="amager"):
        load_tokens(f, {"halmtorv", "amager"})
    with pytest.raises(UsageError, match="make up"):
        load_tokens(tmp_path / "missing.yaml", set())


@pytest.mark.clock
def test_dry_run_prints_the_same_requests_for_the_same_seed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # main() plans from the wall clock, which refuses starts beyond the ingest horizon: start
    # yesterday at 08:00 (a time that exists on every day, DST days included).
    yesterday = datetime.now(CITY.zone).date() - timedelta(days=1)
    argv = [
        "--dry-run",
        "--start",
        f"{yesterday.isoformat()}T08:00",
        "--duration",
        "2h",
        "--facilities",
        "halmtorv",
    ]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == first
    rows = [json.loads(line) for line in first.splitlines()]
    assert rows and all(r["key"].startswith("sim-") for r in rows)
    assert len({r["key"] for r in rows}) == len(rows)
    assert main([*argv, "--seed", "9"]) == 0
    assert capsys.readouterr().out != first


@pytest.mark.clock
async def test_run_plan_against_fake_services_with_progress_and_summary() -> None:
    def accept(request: httpx.Request) -> httpx.Response:
        extra = {"visit_id": "v" + request.headers["Idempotency-Key"][-6:].replace("-", "")}
        return httpx.Response(202, json={"event_id": "e", **extra})

    transport = httpx.MockTransport(accept)
    clients = {s: httpx.AsyncClient(transport=transport, base_url=f"http://{s}") for s in Service}
    now = datetime.now(UTC).replace(microsecond=0)
    # open 24/7; as fast as the fakes answer (runs at every awkward instant in make test)
    p = plan("--duration", "3h", "--facilities", "maendenes-hjem", "--speed", "1e9", now=now)
    tokens = {"maendenes-hjem": "t", "sanitation-city": "s"}
    out = io.StringIO()
    runner, wall = await run_plan(p, clients, tokens, stop=asyncio.Event(), progress=out)
    total = runner.stats.total()
    assert total.sent == total.accepted == len(list(p.reports())) > 10 and total.failed == 0
    assert "100%" in out.getvalue()
    summary = format_summary(runner.stats, p, p.run_id, wall, stopped=False)
    lines = summary.splitlines()
    assert lines[0].startswith(f"dcr-sim summary: run {p.run_id}, seed 1, 1 facilities")
    assert lines[1].split() == ["event", "sent", "accepted", "retried", "failed", "unsent"]
    totals = next(line for line in lines if line.startswith("total")).split()
    assert totals[1] == totals[2] == str(total.sent)


def test_dcr_today_plans_a_dry_run_as_if_now_were_then() -> None:
    zone = CITY.zone
    dry = build_parser().parse_args(["--dry-run", "--days", "1"])
    env = {"DCR_TODAY": "2027-03-28T23:30"}
    assert plan_now(dry, env, NOW, CITY) == datetime(2027, 3, 28, 23, 30, tzinfo=zone)
    # a bare date keeps the local time of day (NOW is 16:30 in Copenhagen)
    assert plan_now(dry, {"DCR_TODAY": "2028-02-29"}, NOW, CITY) == datetime(
        2028, 2, 29, 16, 30, tzinfo=zone
    )
    assert plan_now(dry, {}, NOW, CITY) == NOW
    p = make_plan(dry, plan_now(dry, env, NOW, CITY), CITY)
    assert p.end == datetime(2027, 3, 28, 23, 30, tzinfo=zone)
    assert p.end - p.start == timedelta(days=1)
    with pytest.raises(UsageError, match="dry-run"):  # the services judge by their own clock
        plan_now(build_parser().parse_args(["--days", "1"]), env, NOW, CITY)
    with pytest.raises(UsageError, match="DCR_TODAY"):
        plan_now(dry, {"DCR_TODAY": "someday"}, NOW, CITY)


def test_dcr_today_reaches_main(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DCR_TODAY", "2027-10-31T12:00")
    argv = ["--dry-run", "--duration", "3h", "--facilities", "halmtorv", "--no-street"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["at"].startswith("2027-10-31T") for r in rows)
    monkeypatch.setenv("DCR_TODAY", "2027-10-31")
    assert main(argv[1:]) == 2  # not a dry run: refused


def test_a_duration_is_elapsed_time_across_a_dst_change() -> None:
    spring = datetime(2027, 3, 28, 23, 30, tzinfo=CITY.zone)  # a 23-hour day
    p = plan("--days", "1", now=spring)
    assert p.end is not None and p.end - p.start == timedelta(hours=24)
    p = plan("--start", "2027-10-31", "--duration", "25h", now=spring.replace(month=11, day=2))
    assert p.end is not None and p.end - p.start == timedelta(hours=25)
    assert p.start == datetime(2027, 10, 31, tzinfo=CITY.zone)
