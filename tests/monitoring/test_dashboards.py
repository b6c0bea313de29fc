"""The committed Grafana dashboards are exactly what deploy/grafana/generate.py produces, and
they are consistent with the provisioning: data sources by uid, variables defined, SQL that reads
only what migration 020 grants Grafana's role. (That every query returns data is proven live by
tests/integration/monitoring/test_dashboards_live.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from shared.city import load_city
from shared.settings import REPO_ROOT, CitySettings
from tests.monitoring.dashboards import GRAFANA, committed, load_generator, targets

MIGRATION = REPO_ROOT / "deploy" / "postgres" / "migrations" / "020_grafana_reader.sql"
AGGREGATES = REPO_ROOT / "deploy" / "postgres" / "migrations" / "041_grafana_aggregates_only.sql"
EXPECTED = {
    "city-overview.json": "dcr-city-overview",
    "district.json": "dcr-district",
    "facility.json": "dcr-facility",
    "platform-health.json": "dcr-platform",
}


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, Any]]:
    return committed()


def test_committed_json_equals_the_generators_output() -> None:
    gen = load_generator()
    built = gen.build()
    assert sorted(built) == sorted(EXPECTED)
    on_disk = {p.name: p.read_text() for p in sorted((GRAFANA / "dashboards").glob("*.json"))}
    assert on_disk == {name: gen.render(model) for name, model in built.items()}, (
        "regenerate: .venv/bin/python deploy/grafana/generate.py"
    )


def test_dashboards_are_grafana_11_models(models: dict[str, dict[str, Any]]) -> None:
    assert {name: m["uid"] for name, m in models.items()} == EXPECTED
    for name, m in models.items():
        assert m["schemaVersion"] == 39, name
        assert m["timezone"] == "Europe/Copenhagen"
        assert "dcr" in m["tags"]
        ids = [p["id"] for p in m["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in m["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24, (name, p["title"])
            refs = [t["refId"] for t in p.get("targets", [])]
            assert len(refs) == len(set(refs)), (name, p["title"])
            if p["type"] != "row":
                assert refs, f"{name}: panel {p['title']!r} has no query"


def _provisioned() -> dict[str, str]:
    data = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "dcr.yml").read_text())
    return {d["uid"]: d["type"] for d in data["datasources"]}


def test_every_query_uses_a_provisioned_data_source(models: dict[str, dict[str, Any]]) -> None:
    provisioned = _provisioned()
    assert provisioned == {
        "dcr-prometheus": "prometheus",
        "dcr-postgres": "grafana-postgresql-datasource",
    }
    for m in models.values():
        for p in m["panels"]:
            for ds in [p.get("datasource"), *(t["datasource"] for t in p.get("targets", []))]:
                if ds is not None:
                    assert provisioned.get(ds["uid"]) == ds["type"], (m["uid"], p["title"])


def test_postgres_data_source_is_the_read_only_role_with_password_from_env() -> None:
    text = (GRAFANA / "provisioning" / "datasources" / "dcr.yml").read_text()
    pg = next(
        d
        for d in yaml.safe_load(text)["datasources"]
        if d["type"].endswith("postgresql-datasource")
    )
    assert pg["user"] == "dcr_reader"
    assert pg["secureJsonData"]["password"] == "${DCR_READER_PASSWORD}"
    assert "password" not in pg and "password" not in pg.get("jsonData", {})


def test_variables_are_defined_and_list_the_city(models: dict[str, dict[str, Any]]) -> None:
    city = load_city(CitySettings().file)
    lists = {
        "district": [d.id for d in city.districts],
        "facility": [f.id for f in city.facilities],
    }
    for m in models.values():
        defined = {v["name"]: v for v in m["templating"]["list"]}
        used = {
            name
            for p in m["panels"]
            for t in p.get("targets", [])
            for name in re.findall(r"\$([a-z]+)\b", t.get("expr", "") + t.get("rawSql", ""))
        }
        assert used <= set(defined), (m["uid"], used - set(defined))
        for name, var in defined.items():
            assert [o["value"] for o in var["options"]] == lists[name], (m["uid"], name)


def _granted() -> tuple[set[str], set[str]]:
    """Tables and views granted whole to dcr_reader (migrations 020 and 041), and the columns of
    visits still granted (041 revokes every one of 020's)."""
    sql = MIGRATION.read_text()
    tables_part = re.search(r"GRANT SELECT ON (.*?) TO dcr_reader", sql, re.S)
    visits_part = re.search(r"GRANT SELECT \((.*?)\)\s*ON visits", sql, re.S)
    assert tables_part and visits_part
    tables = {t.strip() for t in tables_part.group(1).split(",")}
    columns = {c.strip() for c in visits_part.group(1).split(",")}
    later = AGGREGATES.read_text()
    revoked = re.search(r"REVOKE SELECT \((.*?)\)\s*ON visits FROM dcr_reader", later, re.S)
    assert revoked and "REVOKE ALL ON visits FROM dcr_reader" in later
    columns -= {c.strip() for c in revoked.group(1).split(",")}
    tables |= set(re.findall(r"GRANT SELECT ON (\w+) TO dcr_reader", later))
    return tables, columns


def test_sql_reads_only_what_grafanas_role_is_granted() -> None:
    tables, visit_columns = _granted()
    assert "ingest_idempotency" not in tables and "visits" not in tables
    assert "public_releases" not in tables
    assert visit_columns == set(), "no visit-level column is granted"
    sql_targets = [t for t in targets() if t.kind == "sql"]
    assert sql_targets
    for t in sql_targets:
        read = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", t.query, re.I))
        read -= {"unnest"}
        ctes = set(re.findall(r"\b([a-z_]+)\s+AS\s*\(", t.query, re.I))
        assert read - ctes <= tables, (t.id, read - ctes - tables)
        assert "client_pseudonym" not in t.query and "visit_id" not in t.query, t.id
        if "visits" in read - ctes:
            assert "*" not in t.query.replace("count(*)", ""), t.id
