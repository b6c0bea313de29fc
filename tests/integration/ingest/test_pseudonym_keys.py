"""Issue 13, "keys fail closed", against the real Kafka and PostgreSQL:

* a dictionary attack (every plausible client code, HMAC'd with the public development secret)
  reverses none of the pseudonyms the intake publishes when it runs as ``make up`` runs it
  (``deploy/scripts/services.sh env``), and all of them when the public secret is used (the
  attack works: the first result is not vacuous);
* a service with no secret, or with 32 x "a", refuses to start;
* rotation: pseudonyms carry their key id; old and new pseudonyms of one code are counted
  separately (the stated rule, docs/pseudonym-keys.md), so a rotation at local midnight leaves
  every daily figure exact;
* ``pseudonym_scope: city``: one code seen in two rooms is one client in the district figure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import shlex
import subprocess
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest
import yaml
from pydantic import SecretStr

from harness.process import INTAKE_APP, ServiceProcess
from services.intake.app import create_app as create_intake
from services.projection.app import create_app as create_projection
from services.projection.bootstrap import ProjectionConfig
from shared.ingest.app import IngestConfig
from shared.kafka import topics
from shared.settings import (
    DEV_SECRET,
    REPO_ROOT,
    CitySettings,
    Environment,
    SecuritySettings,
)
from tests.integration.ingest.conftest import at, bearer
from tests.integration.projection.harness import wait_caught_up
from tests.support import isolated_env, ops_auth, poll_until, read_topic, serve
from tests.unit.projection.factory import CITY

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

pytestmark = pytest.mark.integration

#: Plausible client codes: the facility's prefix and four digits (HT-0000 .. HT-9999).
DICTIONARY = [f"HT-{i:04d}" for i in range(10_000)]
POSTED = DICTIONARY[17:5000:250]  # 20 of them


def make_up_environment() -> dict[str, str]:
    """The pseudonym settings ``make up`` starts the services with."""
    out = subprocess.run(
        [str(REPO_ROOT / "deploy/scripts/services.sh"), "env"],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    ).stdout
    return {k: shlex.split(v)[0] for k, v in (line.split("=", 1) for line in out.splitlines())}


def reverse(pseudonyms: set[str], secret: str, facility: str = "halmtorv") -> set[str]:
    """The attack: the codes of the dictionary whose pseudonym under ``secret`` was seen."""
    return {
        code
        for code in DICTIONARY
        if hmac.new(secret.encode(), f"{facility}\x1f{code}".encode(), hashlib.sha256).hexdigest()
        in pseudonyms
    }


async def published_pseudonyms(env: TestEnv, event_ids: set[str]) -> dict[str, str]:
    """client_pseudonym -> pseudonym_key of the visit.started records with these ids."""
    out = {}
    for r in await read_topic(env.bootstrap, env.topic(topics.VISITS)):
        if r.headers.get("ce_id", b"").decode() in event_ids:
            data = json.loads(r.value)
            out[data["client_pseudonym"]] = data["pseudonym_key"]
    return out


async def post_visits(
    env: TestEnv, client: httpx.AsyncClient, codes: list[str], facility: str = "halmtorv", **kw: str
) -> set[str]:
    ids = set()
    for code in codes:
        body = {
            "facility_id": facility,
            "occurred_at": kw.get("occurred_at", at(5)),
            "client_code": code,
            "substances": ["heroin"],
            "route": "inject",
        }
        r = await client.post("/v1/visits", json=body, headers=bearer(env, facility))
        assert r.status_code == 202, r.text
        ids.add(r.json()["event_id"])
    return ids


async def test_dictionary_attack_fails_against_the_platform_as_make_up_runs_it(
    test_env: TestEnv,
) -> None:
    settings = make_up_environment()
    assert settings["DCR_ENV"] == "dev"  # explicit development mode, set by the script
    assert settings["DCR_PSEUDONYM_SECRET"] != DEV_SECRET

    def config(secret: str) -> IngestConfig:
        security = SecuritySettings(
            env=Environment(settings["DCR_ENV"]), pseudonym_secret=SecretStr(secret)
        )
        return IngestConfig(platform=test_env.platform(), security=security)

    async with serve(create_intake(config=config(settings["DCR_PSEUDONYM_SECRET"]))) as intake:
        ids = await post_visits(test_env, intake, POSTED)
    stored = await published_pseudonyms(test_env, ids)
    assert len(stored) == len(POSTED) and set(stored.values()) == {"k1"}
    assert reverse(set(stored), DEV_SECRET) == set()

    # control: had the platform used the public secret, the same attack reverses every code
    async with serve(create_intake(config=config(DEV_SECRET))) as exposed:
        ids = await post_visits(test_env, exposed, POSTED)
    assert reverse(set(await published_pseudonyms(test_env, ids)), DEV_SECRET) == set(POSTED)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DCR_PSEUDONYM_SECRET": ""}, "too weak"),
        ({"DCR_PSEUDONYM_SECRET": "a" * 32}, "too weak"),
        ({"DCR_PSEUDONYM_SECRET": DEV_SECRET, "DCR_ENV": "prod"}, "development secret"),
    ],
)
async def test_a_service_without_a_strong_secret_refuses_to_start(
    test_env: TestEnv, tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    proc = ServiceProcess(
        tmp_path, "intake", INTAKE_APP, base=test_env.env(), env=overrides
    ).start()
    try:
        assert message in await exited(proc)
    finally:
        proc.terminate()


async def test_unset_secret_refuses_to_start(test_env: TestEnv, tmp_path: Path) -> None:
    unset = {"DCR_PSEUDONYM_SECRET", "DCR_ENV"}
    base = {k: v for k, v in test_env.env().items() if k not in unset}
    proc = ServiceProcess(tmp_path, "intake", INTAKE_APP, base=base).start()
    try:
        assert "DCR_PSEUDONYM_SECRET is not set" in await exited(proc)
    finally:
        proc.terminate()


async def exited(proc: ServiceProcess) -> str:
    """The log of a service process once it exited with an error (fails if it keeps running)."""

    async def gone() -> bool:
        return proc.proc is not None and proc.proc.poll() is not None

    await poll_until(gone, timeout=30, what=f"{proc.name} refusing to start")
    assert proc.proc is not None and proc.proc.returncode != 0
    return proc.log()


def local(day: date, hour: int) -> str:
    return datetime.combine(day, time(hour), tzinfo=CITY.zone).isoformat()


async def district_day(dsn: str, district: str, day: date) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT visits, unique_clients FROM district_daily WHERE district = $1 AND day = $2",
            district,
            day,
        )
        assert row is not None
        return row
    finally:
        await conn.close()


async def test_rotation_counts_old_and_new_pseudonyms_separately(test_env: TestEnv) -> None:
    today = datetime.now(CITY.zone).date()
    before, after = today - timedelta(days=3), today - timedelta(days=2)
    async with isolated_env(test_env, label="keys") as env:

        def keyed(key_id: str) -> IngestConfig:
            secret = SecretStr(secrets.token_hex(32))
            return IngestConfig(
                platform=env.platform(),
                security=SecuritySettings(
                    env=Environment.TEST, pseudonym_key_id=key_id, pseudonym_secret=secret
                ),
            )

        async with serve(create_intake(config=keyed("k1"))) as intake:
            ids = await post_visits(env, intake, ["HT-0001"], occurred_at=local(before, 10))
            ids |= await post_visits(env, intake, ["HT-0001"], occurred_at=local(after, 10))
        # rotation: a new secret under a new key id
        async with serve(create_intake(config=keyed("k2"))) as intake:
            ids |= await post_visits(env, intake, ["HT-0001"], occurred_at=local(after, 12))
        stored = await published_pseudonyms(env, ids)
        assert sorted(stored.values()) == ["k1", "k2"]  # one pseudonym per key, with its id
        async with serve(create_projection(ProjectionConfig(platform=env.platform()))):
            await wait_caught_up(env.dsn, env.bootstrap, env.topic_prefix)
        # the rule: pseudonyms under different keys are different clients
        assert tuple(await district_day(env.dsn, "vesterbro", before)) == (1, 1)
        assert tuple(await district_day(env.dsn, "vesterbro", after)) == (2, 2)
        conn = await asyncpg.connect(env.dsn)
        try:
            keys = await conn.fetch("SELECT DISTINCT pseudonym_key FROM visits ORDER BY 1")
        finally:
            await conn.close()
        assert [r[0] for r in keys] == ["k1", "k2"]


@pytest.mark.parametrize(
    ("scope", "vesterbro", "amager", "city"), [("facility", 2, 1, 3), ("city", 1, 1, 1)]
)
async def test_city_scope_makes_one_code_in_two_rooms_one_client(
    test_env: TestEnv,
    tmp_path: Path,
    scope: str,
    vesterbro: int,
    amager: int,
    city: int,
) -> None:
    """One code at both Vesterbro rooms and at Amager: with ``city`` scope one person in the
    district figures and in the city figure (not the districts' sum)."""
    day = datetime.now(CITY.zone).date() - timedelta(days=1)
    config = yaml.safe_load((REPO_ROOT / "deploy/city.yaml").read_text())
    config["pseudonym_scope"] = scope
    city_file = tmp_path / "city.yaml"
    city_file.write_text(yaml.safe_dump(config))
    async with isolated_env(test_env, label="scope") as env:
        platform = replace(env.platform(), city_settings=CitySettings(file=city_file))
        async with serve(create_intake(config=env.ingest(platform))) as intake:
            for facility in ("halmtorv", "maendenes-hjem", "amager"):
                await post_visits(
                    env, intake, ["V-0042"], facility=facility, occurred_at=local(day, 12)
                )
        config = ProjectionConfig(platform=platform)
        async with serve(create_projection(config), headers=ops_auth(env)) as projection:
            await wait_caught_up(env.dsn, env.bootstrap, env.topic_prefix)
            summary = await projection.get(
                "/v1/city/summary", params={"from": day.isoformat(), "to": day.isoformat()}
            )
        assert tuple(await district_day(env.dsn, "vesterbro", day)) == (2, vesterbro)
        assert tuple(await district_day(env.dsn, "amager", day)) == (1, amager)
        assert summary.status_code == 200, summary.text
        [figures] = summary.json()["days"]
        assert (figures["visits"], figures["unique_clients"]) == (3, city)
