"""promtool accepts the Prometheus configuration and rules, and every alert's unit tests pass
(deploy/prometheus/tests/*.yml: each alert firing and not firing). A non-zero exit fails.

Also: the local and compose configurations are generated from the service table
(deploy/services.txt) and differ only in their targets, every scraped service is a job on its
port, and every alert is shaped the same way (severity label, summary/description/probe
annotations, a written runbook, unit-tested)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.service_table import SERVICES
from shared.settings import REPO_ROOT
from tests.monitoring.dashboards import PROMETHEUS, rules

PROMTOOL = Path("/usr/bin/promtool")
AMTOOL = Path("/usr/bin/amtool")
CONFIGS = [PROMETHEUS / "prometheus.yml", PROMETHEUS / "prometheus.compose.yml"]
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
#: The alerts issue 5 asks for (and one for the domain metrics' own freshness); issue 11 replaced
#: OverdoseSpike (report time) by DrugAlertOpen (the event-time drug alert rule's open alerts).
REQUIRED_ALERTS = {
    "DrugAlertOpen",
    "DrugAlertEvaluatorDown",
    "AlertDeliveryDead",
    "FacilitySilent",
    "ProjectionLagHigh",
    "ProjectionStale",
    "DeadLettersGrowing",
    "ServiceDown",
    "NaloxoneStockLow",
    "HttpErrorRatioHigh",
    "DomainMetricsStale",
}


def promtool(*args: str | Path) -> str:
    assert PROMTOOL.exists(), "promtool missing: run deploy/scripts/prometheus.sh install"
    proc = subprocess.run(
        [str(PROMTOOL), *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_promtool_check_config(config: Path, tmp_path: Path) -> None:
    """The configuration as deployed, with its scraper credential file and rule files pointed at
    a placeholder token and the repository's rules (promtool checks that both exist)."""
    cfg = _load(config)
    token = tmp_path / "prometheus.token"
    token.write_text("placeholder")
    for job in cfg["scrape_configs"]:
        if "authorization" in job:
            assert job["authorization"]["type"] == "Bearer"
            job["authorization"]["credentials_file"] = str(token)
    cfg["rule_files"] = [str(PROMETHEUS / pattern) for pattern in cfg["rule_files"]]
    checked = tmp_path / config.name
    checked.write_text(yaml.safe_dump(cfg))
    out = promtool("check", "config", checked)
    assert f"{len(RULE_FILES)} rule files found" in out


def test_every_service_job_scrapes_with_a_credential_file() -> None:
    for config in CONFIGS:
        for job in _load(config)["scrape_configs"]:
            if job["job_name"] != "prometheus":
                assert job["authorization"]["type"] == "Bearer", (config.name, job)
                assert job["authorization"]["credentials_file"].endswith("prometheus.token")


def test_promtool_check_rules() -> None:
    assert RULE_FILES
    promtool("check", "rules", *RULE_FILES)


def test_promtool_test_rules() -> None:
    assert TEST_FILES
    out = promtool("test", "rules", *TEST_FILES)
    assert "FAILED" not in out


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_local_and_compose_configs_differ_only_in_targets() -> None:
    local, compose = (_load(p) for p in CONFIGS)
    for cfg in (local, compose):
        for job in cfg["scrape_configs"]:
            job.pop("static_configs")
            job.pop("authorization", None)  # the token file's path differs (volume vs .state)
    alertmanagers = [
        [
            t
            for am in cfg.pop("alerting")["alertmanagers"]
            for sc in am["static_configs"]
            for t in sc["targets"]
        ]
        for cfg in (local, compose)
    ]
    assert alertmanagers == [["127.0.0.1:9093"], ["alertmanager:9093"]]
    assert local == compose


def test_amtool_accepts_the_alertmanager_configs_and_they_are_current() -> None:
    """``amtool check-config`` on both generated configs (like promtool for Prometheus's), and
    they equal deploy/alertmanager/generate.py's output for the committed contacts."""
    assert AMTOOL.exists(), "amtool missing: run deploy/scripts/alertmanager.sh install"
    configs = sorted((REPO_ROOT / "deploy" / "alertmanager").glob("alertmanager*.yml"))
    assert [p.name for p in configs] == ["alertmanager.compose.yml", "alertmanager.yml"]
    proc = subprocess.run(
        [str(AMTOOL), "check-config", *map(str, configs)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _assert_current("deploy/alertmanager/generate.py")


def test_every_service_is_scraped_on_its_port() -> None:
    """Each scraped service of the table (deploy/services.txt) is a job at its port and metrics
    path in both configurations; the front desk (metrics "-") is not scraped."""
    scraped = {s.name: s for s in SERVICES if s.scraped}
    assert set(scraped) == {"intake", "supply", "incident", "projection", "public"}
    local, compose = (_load(p) for p in CONFIGS)
    targets = {
        cfg_name: {
            job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
            for job in cfg["scrape_configs"]
        }
        for cfg_name, cfg in (("local", local), ("compose", compose))
    }
    assert targets["local"] == {
        "prometheus": ["127.0.0.1:9090"],
        **{name: [f"127.0.0.1:{s.port}"] for name, s in scraped.items()},
    }
    assert targets["compose"] == {
        "prometheus": ["localhost:9090"],
        **{name: [f"{name}:{s.port}"] for name, s in scraped.items()},
    }
    paths = {j["job_name"]: j.get("metrics_path") for j in local["scrape_configs"]}
    assert {name: paths[name] for name in scraped} == {
        n: s.metrics_path for n, s in scraped.items()
    }
    assert local["rule_files"] == ["rules/*.yml"]


def test_the_prometheus_configs_are_generated_from_the_service_table() -> None:
    """Both committed files equal deploy/prometheus/generate.py's output (a service added to
    deploy/services.txt is scraped once they are regenerated; a hand edit fails here)."""
    _assert_current("deploy/prometheus/generate.py")


def _assert_current(generator: str) -> None:
    """``generator --check`` exits 0: the files it writes are committed as it writes them."""
    gen = subprocess.run(
        [sys.executable, generator, "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert gen.returncode == 0, gen.stderr


def test_alerts_are_complete_and_uniform() -> None:
    found = rules()
    names = [r.name for r in found]
    assert len(names) == len(set(names)), "alert names are unique"
    assert set(names) == REQUIRED_ALERTS
    raw = [
        rule for path in RULE_FILES for group in _load(path)["groups"] for rule in group["rules"]
    ]
    for rule in raw:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description", "probe"} <= set(rule["annotations"]), rule["alert"]
        runbook = rule["annotations"]["runbook_url"]
        assert runbook == f"docs/runbooks/{rule['alert']}.md", rule["alert"]
        assert (REPO_ROOT / runbook).is_file(), f"{rule['alert']}: runbook {runbook} missing"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in _load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == REQUIRED_ALERTS, REQUIRED_ALERTS - firing
    assert quiet == REQUIRED_ALERTS, REQUIRED_ALERTS - quiet
