"""docker-compose.yml is valid Compose and stays in step with the local scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

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
    script = (ROOT / "deploy" / "scripts" / "services.sh").read_text()
    local = {
        name: (module, port)
        for name, module, port in re.findall(r'"(\w+)\s+(\S+)\s+(\d+)"', script)
    }
    assert set(local) == {"intake", "supply", "incident", "projection", "public", "frontdesk"}
    for name, (module, port) in local.items():
        svc = compose["services"][name]
        assert module in svc["command"], name
        assert f"127.0.0.1:{port}:{port}" in svc["ports"], name
        assert "healthcheck" in svc, name
        for dep in ("kafka", "postgres"):
            assert svc["depends_on"][dep]["condition"] == "service_healthy", name


def test_compose_kafka_is_the_version_the_pom_resolves(compose: dict) -> None:  # type: ignore[type-arg]
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"
    assert "healthcheck" in compose["services"]["kafka"]
    assert "healthcheck" in compose["services"]["postgres"]


def test_compose_has_no_default_secrets(compose: dict) -> None:  # type: ignore[type-arg]
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${DCR_PSEUDONYM_SECRET:?" in text and "${DCR_DB_PASSWORD:?" in text
    assert compose["services"]["intake"]["environment"]["DCR_ENV"] == "prod"
