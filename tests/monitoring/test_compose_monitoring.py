"""docker-compose.yml's monitoring part: Prometheus and Grafana pinned, their configuration
mounted from the repository, no default secrets, Grafana's database role set up after the
migrations. (tests/unit/test_deployment.py validates the whole file against the Compose schema.)"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared.settings import REPO_ROOT


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    svc: dict[str, Any] = compose["services"]
    return svc


def _mounts(svc: dict[str, Any]) -> dict[str, str]:
    """host path (relative to the repo) -> container path, for bind mounts."""
    out = {}
    for v in svc.get("volumes", []):
        host, container = v.split(":")[:2]
        if host.startswith("./"):
            out[host[2:]] = container
    return out


def test_images_are_pinned(services: dict[str, Any]) -> None:
    assert services["prometheus"]["image"] == "prom/prometheus:v2.53.0"
    image, tag = services["grafana"]["image"].split(":")
    assert image == "grafana/grafana" and tag.startswith("11.") and tag.count(".") == 2


def test_prometheus_uses_the_repositorys_config_and_rules(services: dict[str, Any]) -> None:
    prom = services["prometheus"]
    mounts = _mounts(prom)
    assert mounts["deploy/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.compose.yml" in prom["command"]
    assert (REPO_ROOT / "deploy/prometheus/prometheus.compose.yml").exists()
    for name in ("intake", "supply", "incident", "projection"):
        assert name in prom["depends_on"]
    assert prom["ports"] == ["127.0.0.1:9090:9090"]
    assert "healthcheck" in prom


def test_grafana_is_provisioned_from_files(services: dict[str, Any]) -> None:
    graf = services["grafana"]
    mounts = _mounts(graf)
    assert mounts["deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_dir = mounts["deploy/grafana/dashboards"]
    provider = yaml.safe_load(
        (REPO_ROOT / "deploy/grafana/provisioning/dashboards/dcr.yml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] == dashboards_dir
    home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_dir + "/")
    assert (REPO_ROOT / "deploy/grafana/dashboards" / home.rsplit("/", 1)[1]).exists()
    assert graf["depends_on"]["grafana-db-reader"]["condition"] == "service_completed_successfully"
    assert graf["ports"] == ["127.0.0.1:3000:3000"]


def test_no_default_secrets(services: dict[str, Any]) -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    env = services["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["DCR_READER_PASSWORD"].startswith("${DCR_READER_PASSWORD:?")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    reader = services["grafana-db-reader"]["environment"]
    assert reader["DCR_READER_PASSWORD"].startswith("${DCR_READER_PASSWORD:?")
    assert reader["PGPASSWORD"].startswith("${DCR_DB_PASSWORD:?")
    assert "GRAFANA_ADMIN_PASSWORD:-" not in text and "DCR_READER_PASSWORD:-" not in text


def test_reader_role_job_runs_after_the_migrations(services: dict[str, Any]) -> None:
    job = services["grafana-db-reader"]
    assert job["depends_on"]["init"]["condition"] == "service_completed_successfully"
    mounts = _mounts(job)
    for host in ("deploy/grafana/reader.sql", "deploy/postgres/migrations/020_grafana_reader.sql"):
        assert host in mounts and (REPO_ROOT / host).exists()
    script = " ".join(job["command"])
    assert "$$DCR_READER_PASSWORD" in script, "escaped for Compose, expanded by the shell"
    assert script.index("reader.sql") < script.index("020_grafana_reader.sql")
