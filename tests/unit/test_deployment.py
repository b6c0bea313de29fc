"""docker-compose.yml is valid Compose and stays in step with the local scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from shared.service_table import SERVICES, load_services

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_validates_against_the_official_schema(compose: dict) -> None:  # type: ignore[type-arg]
    assert SCHEMA.exists(), f"Compose schema expected at {SCHEMA}"
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(compose)


def test_compose_runs_the_same_services_on_the_same_ports_as_the_scripts(
    compose: dict,  # type: ignore[type-arg]
) -> None:
    """Every service of the table (deploy/services.txt, which services.sh starts) runs in
    compose with the same app on the same port."""
    assert {s.name for s in SERVICES} == {
        "intake", "supply", "incident", "projection", "public", "frontdesk"
    }  # fmt: skip
    for s in SERVICES:
        svc = compose["services"][s.name]
        assert s.app in svc["command"], s.name
        assert str(s.port) in svc["command"], s.name
        assert f"127.0.0.1:{s.port}:{s.port}" in svc["ports"], s.name
        assert "healthcheck" in svc, s.name
        for dep in ("kafka", "postgres"):
            assert svc["depends_on"][dep]["condition"] == "service_healthy", s.name


def test_the_scripts_start_the_services_of_the_table() -> None:
    """services.sh spells no service, app or port itself: it reads deploy/services.txt."""
    script = (ROOT / "deploy" / "scripts" / "services.sh").read_text()
    assert "services.txt" in script
    for s in SERVICES:
        assert s.app not in script, s.name
        assert str(s.port) not in script, s.name


def test_the_service_table_refuses_a_bad_row(tmp_path: Path) -> None:
    table = tmp_path / "services.txt"
    table.write_text("intake services.intake.app:create_app 8001 /metrics ingest\n")
    assert [s.port for s in load_services(table)] == [8001]
    table.write_text(
        "intake services.intake.app:create_app 8001 /metrics ingest\n"
        "supply services.supply.app:create_app 8001 /metrics ingest\n"
    )
    with pytest.raises(ValueError, match="duplicate port"):
        load_services(table)
    table.write_text("intake services.intake.app:create_app 8001 metrics ingest\n")
    with pytest.raises(ValueError, match=r"services\.txt:1: metrics path"):
        load_services(table)


def test_compose_kafka_is_the_version_the_pom_resolves(compose: dict) -> None:  # type: ignore[type-arg]
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"
    assert "healthcheck" in compose["services"]["kafka"]
    assert "healthcheck" in compose["services"]["postgres"]


def test_compose_postgres_has_the_settings_the_script_installs(compose: dict) -> None:  # type: ignore[type-arg]
    """deploy/postgres/dcr.conf (installed by deploy/scripts/postgres.sh) and the compose
    service's ``-c`` flags are the same settings."""
    conf = {}
    for line in (ROOT / "deploy" / "postgres" / "dcr.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, value = (part.strip() for part in line.split("=", 1))
            conf[name] = value
    command = compose["services"]["postgres"]["command"]
    assert command[0] == "postgres"
    flags = command[1:]
    assert flags[::2] == ["-c"] * len(conf)
    assert dict(flag.split("=", 1) for flag in flags[1::2]) == conf
    assert conf["shared_buffers"] == "2GB"  # parsed, not empty


def test_compose_has_no_default_secrets(compose: dict) -> None:  # type: ignore[type-arg]
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${DCR_PSEUDONYM_SECRET:?" in text and "${DCR_DB_PASSWORD:?" in text
    assert compose["services"]["intake"]["environment"]["DCR_ENV"] == "prod"
