"""The platform as real processes for the monitoring tests: the scraped services of the
service table (uvicorn, like deploy/scripts/services.sh), traffic through their public APIs, and
a real Prometheus scraping them every second with the repository's rule files.

Every process is a :mod:`harness.process` child, stopped (SIGTERM, then SIGKILL) whatever
happens in the test; readiness is polled against deadlines, never slept for.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from harness.process import ChildProcess, ServiceProcess, free_port
from shared.service_table import SERVICES as TABLE
from shared.settings import REPO_ROOT

if TYPE_CHECKING:
    from tests.integration.conftest import TestEnv

PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
#: name -> uvicorn factory: the scraped services of the service table (deploy/services.txt).
SERVICES = {s.name: s.app for s in TABLE if s.scraped}


def reader_dsn(dsn: str) -> str:
    """The database's DSN as dcr_reader (password: DCR_READER_PASSWORD, else the local
    development one that deploy/scripts/postgres.sh sets)."""
    scheme, rest = dsn.split("://", 1)
    host_db = rest.rsplit("@", 1)[-1]
    password = os.environ.get("DCR_READER_PASSWORD", "dcr_reader")
    return f"{scheme}://dcr_reader:{password}@{host_db}"


def start_services(
    env: TestEnv, log_dir: Path, extra_env: dict[str, str]
) -> dict[str, ServiceProcess]:
    """Start the services (the public API too) on free ports, pointed at ``env``."""
    return {
        name: ServiceProcess(log_dir, name, app, base=env.env(**extra_env)).start()
        for name, app in SERVICES.items()
    }


# --- Prometheus --------------------------------------------------------------------------------


def prometheus_config(
    ports: dict[str, int], self_port: int, token_file: Path, alertmanager: str | None = None
) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the test's ports, 1 s intervals, the repository's
    rule files by absolute path and the test session's scraper token file; alerts go to the
    test's ``alertmanager`` (host:port) or nowhere (never to a developer's Alertmanager on 9093)."""
    cfg: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    cfg.pop("alerting", None)
    if alertmanager is not None:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    cfg["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in cfg["rule_files"]]
    jobs = {job["job_name"] for job in cfg["scrape_configs"]}
    assert jobs == {"prometheus", *ports}, jobs
    for job in cfg["scrape_configs"]:
        port = self_port if job["job_name"] == "prometheus" else ports[job["job_name"]]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token_file)
    return cfg


def start_prometheus(
    ports: dict[str, int], work: Path, scrape_token: str, alertmanager: str | None = None
) -> tuple[ChildProcess, str]:
    port = free_port()
    token_file = work / "prometheus.token"
    token_file.write_text(scrape_token)
    token_file.chmod(0o600)
    config = work / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(ports, port, token_file, alertmanager)))
    argv = [
        str(PROMETHEUS_BIN),
        f"--config.file={config}",
        f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    prom = ChildProcess("prometheus", argv, work / "prometheus.log", {"PATH": "/usr/bin:/bin"})
    return prom.start(), f"http://127.0.0.1:{port}"


@dataclass
class PromClient:
    url: str
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query at now; raises on a PromQL error."""
        r = await self.http.get(f"{self.url}/api/v1/query", params={"query": expr})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{expr}\n{body}"
        assert body["data"]["resultType"] in ("vector", "scalar"), body["data"]["resultType"]
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    async def value(self, expr: str) -> float | None:
        result = await self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    async def known_metric(self, name: str) -> bool:
        """Whether a scraped target exposed ``name`` (samples or only HELP/TYPE metadata)."""
        candidates = {name, re.sub(r"_(total|bucket|sum|count|created)$", "", name)}
        for c in candidates:
            r = await self.http.get(f"{self.url}/api/v1/metadata", params={"metric": c})
            if r.json().get("data"):
                return True
        return bool(await self.query(f"group({{__name__={name!r}}})".replace("'", '"')))

    async def targets_up(self) -> dict[str, str]:
        r = await self.http.get(f"{self.url}/api/v1/targets")
        return {t["labels"]["job"]: t["health"] for t in r.json()["data"]["activeTargets"]}

    async def aclose(self) -> None:
        await self.http.aclose()


# --- traffic -----------------------------------------------------------------------------------


@dataclass
class Traffic:
    """What was sent, for exact assertions."""

    accepted: int = 0
    visits_started: dict[str, int] = field(default_factory=dict)  # facility -> n
    visits_ended: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    dispensed: dict[tuple[str, str], int] = field(default_factory=dict)  # (district, item)
    overdoses: dict[str, int] = field(default_factory=dict)  # district -> n
    life_threatening: dict[str, int] = field(default_factory=dict)
    naloxone_doses: dict[str, int] = field(default_factory=dict)
    sharps_returned: dict[str, int] = field(default_factory=dict)
    sharps_returned_grams: dict[str, float] = field(default_factory=dict)
    street_needles: dict[str, int] = field(default_factory=dict)
    street_needles_grams: dict[str, float] = field(default_factory=dict)
    incidents: dict[tuple[str, str], int] = field(default_factory=dict)  # (district, kind)
    client_codes: set[str] = field(default_factory=set)
    issued_ids: set[str] = field(default_factory=set)


def _at(seconds_ago: float) -> str:
    """An event time shortly before now: the whole traffic spans one minute (around midnight it
    may straddle two days: the tests compare per day, they do not assume one)."""
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def _add(d: dict[Any, Any], key: Any, n: float = 1) -> None:
    d[key] = d.get(key, 0) + n


async def send_traffic(env: TestEnv, urls: dict[str, str]) -> Traffic:
    """A small day at three rooms and a sanitation sweep, through the public APIs."""
    t = Traffic()
    district = {"halmtorv": "vesterbro", "nordvest": "nordvest", "amager": "amager"}
    async with httpx.AsyncClient(timeout=15) as c:

        async def post(
            service: str, path: str, principal: str, body: dict[str, Any], expect: int = 202
        ) -> dict[str, Any]:
            headers = {
                "Authorization": f"Bearer {env.tokens[principal]}",
                "Idempotency-Key": uuid.uuid4().hex,
            }
            r = await c.post(f"{urls[service]}/v1{path}", headers=headers, json=body)
            assert r.status_code == expect, f"{service} {path}: {r.status_code} {r.text}"
            if expect == 202:
                t.accepted += 1
            answer: dict[str, Any] = r.json()
            return answer

        # stock first (counted a minute ago), then the movements after the count
        await post(
            "supply",
            "/stock/counts",
            "halmtorv",
            {
                "facility_id": "halmtorv",
                "occurred_at": _at(60),
                "items": {"naloxone_kits": 10, "syringes": 500, "needles": 500},
            },
        )
        await post(
            "supply",
            "/stock/deliveries",
            "halmtorv",
            {"facility_id": "halmtorv", "occurred_at": _at(55), "items": {"swabs": 100}},
        )
        for facility, n in (("halmtorv", 6), ("nordvest", 2), ("amager", 1)):
            for i in range(n):
                code = f"{facility[:2].upper()}-{i % 4:04d}"
                t.client_codes.add(code)
                answer = await post(
                    "intake",
                    "/visits",
                    facility,
                    {
                        "facility_id": facility,
                        "occurred_at": _at(45),
                        "client_code": code,
                        "substances": ["heroin"] if i % 2 else ["cocaine", "heroin"],
                        "route": "inject" if i % 2 else "smoke",
                        "booth": i + 1,
                    },
                )
                t.issued_ids.add(answer["visit_id"])
                _add(t.visits_started, facility)
                if facility == "halmtorv" and i < 2:
                    await post(
                        "intake",
                        "/visits/end",
                        facility,
                        {
                            "facility_id": facility,
                            "occurred_at": _at(20),
                            "visit_id": answer["visit_id"],
                        },
                    )
                    _add(t.visits_ended, facility)
        for _ in range(2):
            await post(
                "intake",
                "/refusals",
                "halmtorv",
                {"facility_id": "halmtorv", "occurred_at": _at(40), "reason": "capacity"},
            )
            _add(t.refusals, "halmtorv")
        await post(
            "intake",
            "/referrals",
            "halmtorv",
            {"facility_id": "halmtorv", "occurred_at": _at(40), "referral_to": "housing"},
        )
        await post(
            "intake",
            "/services",
            "nordvest",
            {"facility_id": "nordvest", "occurred_at": _at(40), "service": "wound_care"},
        )
        for _ in range(2):
            items = {"syringes": 10, "needles": 10, "naloxone_kits": 2}
            await post(
                "supply",
                "/supplies/dispensed",
                "halmtorv",
                {"facility_id": "halmtorv", "occurred_at": _at(30), "items": items},
            )
            for item, n in items.items():
                _add(t.dispensed, ("vesterbro", item), n)
        await post(
            "supply",
            "/sharps/returned",
            "halmtorv",
            {"facility_id": "halmtorv", "occurred_at": _at(30), "count": 15, "weight_kg": 0.3},
        )
        _add(t.sharps_returned, "vesterbro", 15)
        _add(t.sharps_returned_grams, "vesterbro", 300.0)
        await post(
            "supply",
            "/street-needles",
            "sanitation-city",
            {
                "district": "vesterbro",
                "occurred_at": _at(30),
                "area": "Skelbækgade",
                "count": 17,
                "weight_kg": 0.25,
            },
        )
        _add(t.street_needles, "vesterbro", 17)
        _add(t.street_needles_grams, "vesterbro", 250.0)
        incidents = [
            ("halmtorv", "opioid_overdose", True, 2, "recovered_on_site"),
            ("halmtorv", "opioid_overdose", True, 2, "recovered_on_site"),
            ("halmtorv", "violence", False, 0, "left"),
            ("nordvest", "seizure", False, 0, "transferred_to_hospital"),
        ]
        for facility, kind, life_threatening, naloxone, outcome in incidents:
            answer = await post(
                "incident",
                "/incidents",
                facility,
                {
                    "facility_id": facility,
                    "occurred_at": _at(30),
                    "kind": kind,
                    "severity": "severe" if life_threatening else "moderate",
                    "life_threatening": life_threatening,
                    "interventions": {"naloxone_doses": naloxone},
                    "outcome": outcome,
                },
            )
            t.issued_ids.add(answer["incident_id"])
            d = district[facility]
            _add(t.incidents, (d, kind))
            if kind in ("opioid_overdose", "stimulant_overamping"):
                _add(t.overdoses, d)
            if life_threatening:
                _add(t.life_threatening, d)
            _add(t.naloxone_doses, d, naloxone)
        # fentanyl in heroin: the incident service raises a drug alert for vesterbro
        await post(
            "incident",
            "/drug-checks",
            "halmtorv",
            {
                "facility_id": "halmtorv",
                "occurred_at": _at(20),
                "expected": "heroin",
                "found": ["heroin", "fentanyl"],
            },
        )
        # refused requests: 401 (no valid token) and 422 (invalid body)
        r = await c.post(f"{urls['intake']}/v1/visits", headers={"Authorization": "Bearer x"})
        assert r.status_code == 401
        await post("supply", "/sharps/returned", "halmtorv", {"count": 1}, expect=422)
    return t
