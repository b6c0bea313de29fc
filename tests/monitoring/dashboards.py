"""The committed Grafana dashboards and Prometheus rules as test parameters, and Grafana's
variable/macro substitution (what Grafana sends to the data source for given variable values)."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from shared.settings import REPO_ROOT

GRAFANA = REPO_ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"

#: Values used for Grafana's variables when a query is run outside Grafana.
PROM_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$district": "vesterbro",
    "$facility": "halmtorv",
}
SQL_VARIABLES = {"$district": "vesterbro", "$facility": "halmtorv"}
_TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")
_METRIC = re.compile(r"\b(dcr_[a-z0-9_]+)")


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref: str
    kind: str  # "prometheus" or "sql"
    query: str
    fmt: str  # SQL format: table or time_series

    @property
    def id(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref}"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dcr_grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def targets() -> list[Target]:
    out: list[Target] = []
    for name, model in committed().items():
        for panel in model["panels"]:
            for t in panel.get("targets", []):
                kind = "sql" if "rawSql" in t else "prometheus"
                out.append(
                    Target(
                        dashboard=name.removesuffix(".json"),
                        panel=panel["title"],
                        ref=t["refId"],
                        kind=kind,
                        query=t["rawSql"] if kind == "sql" else t["expr"],
                        fmt=t.get("format", ""),
                    )
                )
    return out


@dataclass(frozen=True)
class Rule:
    group: str
    name: str
    expr: str
    probe: str
    labels: dict[str, str]


def rules() -> list[Rule]:
    out: list[Rule] = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for r in group["rules"]:
                out.append(
                    Rule(
                        group=group["name"],
                        name=r.get("alert") or r["record"],
                        expr=r["expr"],
                        probe=r.get("annotations", {}).get("probe", ""),
                        labels=r.get("labels", {}),
                    )
                )
    return out


def promql(query: str) -> str:
    for name in sorted(PROM_VARIABLES, key=len, reverse=True):
        query = query.replace(name, PROM_VARIABLES[name])
    assert "$" not in query, f"unsubstituted variable in {query}"
    return query


def sql(query: str, time_from: datetime, time_to: datetime) -> str:
    """Grafana's macros as the PostgreSQL data source expands them, and the variables."""

    def iso(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    query = _TIME_FILTER.sub(
        lambda m: f"{m.group(1)} BETWEEN '{iso(time_from)}' AND '{iso(time_to)}'", query
    )
    query = query.replace("$__timeFrom()", f"'{iso(time_from)}'")
    query = query.replace("$__timeTo()", f"'{iso(time_to)}'")
    for name, value in SQL_VARIABLES.items():
        query = query.replace(name, value)
    assert "$" not in query, f"unsubstituted macro or variable in {query}"
    return query


def metric_names(expr: str) -> set[str]:
    names = set(_METRIC.findall(expr))
    if re.search(r"\bup\{", expr):
        names.add("up")
    return names


def path(p: Path) -> str:
    return str(p.relative_to(REPO_ROOT))
