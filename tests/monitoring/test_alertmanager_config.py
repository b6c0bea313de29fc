"""Alertmanager's route tree, checked with ``amtool config routes test`` on the committed config:
domain alerts of a district reach that district's receiver (its rooms, outreach and ops on call),
platform alerts reach ops only; every receiver sends to exactly the recipients contacts.yaml
names for it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from shared.city import load_city
from shared.contacts import ContactsSettings, load_contacts
from shared.settings import REPO_ROOT, CitySettings

AMTOOL = Path("/usr/bin/amtool")
CONFIG = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
CITY = load_city(CitySettings().file)
CONTACTS = load_contacts(ContactsSettings().file, CITY)


def route(*labels: str) -> str:
    proc = subprocess.run(
        [str(AMTOOL), "config", "routes", "test", f"--config.file={CONFIG}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("alert", ["DrugAlertOpen", "FacilitySilent", "NaloxoneStockLow"])
@pytest.mark.parametrize("district", [d.id for d in CITY.districts])
def test_domain_alerts_go_to_their_district(alert: str, district: str) -> None:
    assert route(f"alertname={alert}", f"district={district}", "severity=critical") == (
        f"district-{district}"
    )


@pytest.mark.parametrize(
    "alert",
    ["ServiceDown", "DrugAlertEvaluatorDown", "AlertDeliveryDead", "ProjectionStale"],
)
def test_platform_alerts_go_to_ops_only(alert: str) -> None:
    assert route(f"alertname={alert}", "job=incident", "district=vesterbro") == "ops"


def test_receivers_are_the_contacts_of_their_district() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    ops = {c["to"] for c in receivers["ops"]["email_configs"]}
    assert ops == {r.email for r in CONTACTS.platform() if r.email}
    for d in CITY.districts:
        to = {c["to"] for c in receivers[f"district-{d.id}"]["email_configs"]}
        assert to == {r.email for r in CONTACTS.for_district(d.id, CITY) if r.email}
    halmtorv = CONTACTS.recipients[0]
    assert halmtorv.facility == "halmtorv" and halmtorv.email not in {
        c["to"] for c in receivers["district-amager"]["email_configs"]
    }


def test_service_down_inhibits_facility_silent() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    pairs = {
        (tuple(r["source_matchers"]), tuple(r["target_matchers"])) for r in config["inhibit_rules"]
    }
    assert (('alertname="ServiceDown"',), ('alertname="FacilitySilent"',)) in pairs
