"""The front desk's and the simulator's default URLs of the other services agree with the one
service table (deploy/services.txt). They are spelled in their settings because the service
image has no service table (shared/service_table.py); this check makes the table their source."""

from __future__ import annotations

from urllib.parse import urlsplit

from services.frontdesk.settings import FrontdeskSettings
from services.simulator.cli import DEFAULT_URLS
from shared.service_table import SERVICES, service


def _port(url: str) -> int | None:
    return urlsplit(url).port


def test_frontdesk_defaults_name_the_tables_ports() -> None:
    fields = FrontdeskSettings.model_fields
    expected = {"intake_url": "intake", "supply_url": "supply", "incident_url": "incident"}
    expected["read_api_url"] = "projection"
    for field_name, name in expected.items():
        default = fields[field_name].default
        assert _port(default) == service(name).port, (field_name, default)
        assert urlsplit(default).hostname == "127.0.0.1", field_name


def test_simulator_defaults_name_the_tables_ports() -> None:
    assert {str(s) for s in DEFAULT_URLS} <= {s.name for s in SERVICES}
    for name, url in DEFAULT_URLS.items():
        assert _port(url) == service(str(name)).port, (name, url)
