"""A Prometheus rule firing reaches people through Alertmanager, on the real parts: the real
Prometheus evaluates the repository's rules (deploy/prometheus/rules) on a scraped exposition that
shows an open drug alert in Vesterbro; the real Alertmanager (Debian's prometheus-alertmanager)
with the configuration deploy/alertmanager/generate.py builds from a contacts file routes
``DrugAlertOpen`` to the Vesterbro receiver: its webhook (a real HTTP receiver) and its e-mails
(a real SMTP server) arrive; nothing reaches another district's room.

The exposition is a stub (the metric the projection would export) so that the rule fires at
once; the projection's own metric is proven by tests/integration/notify/test_lifecycle.py."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml

from harness.process import ChildProcess, free_port
from shared.city import load_city
from shared.contacts import load_contacts
from shared.settings import REPO_ROOT, CitySettings
from tests.integration.monitoring.stack import start_prometheus
from tests.integration.notify.receivers import WebhookReceiver, mail_sink, mails, write_contacts
from tests.support import poll_until

pytestmark = pytest.mark.integration

ALERTMANAGER_BIN = Path("/usr/bin/prometheus-alertmanager")
EXPOSITION = (
    "# TYPE dcr_drug_alerts_open gauge\n"
    'dcr_drug_alerts_open{district="vesterbro"} 1\n'
    'dcr_drug_alerts_open{district="sydhavn"} 0\n'
)


def generator() -> ModuleType:
    path = REPO_ROOT / "deploy" / "alertmanager" / "generate.py"
    spec = importlib.util.spec_from_file_location("am_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def exposition() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = EXPOSITION.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


async def test_a_firing_rule_reaches_the_district_webhook_and_mailboxes(
    tmp_path: Path, exposition: int
) -> None:
    city = load_city(CitySettings().file)
    received: list[dict[str, Any]] = []

    webhook = WebhookReceiver(require_signature=False)
    with webhook.running(), mail_sink(tmp_path / "mail") as smtp_port:
        recipients = write_contacts(tmp_path / "contacts.yaml", webhook.url)
        contacts = load_contacts(tmp_path / "contacts.yaml", city)
        config = generator().build(f"127.0.0.1:{smtp_port}", contacts, city)
        config["route"].update(group_wait="1s", group_interval="1s")
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
        am_port = free_port()
        am = ChildProcess(
            "alertmanager",
            [
                str(ALERTMANAGER_BIN),
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
            {"PATH": "/usr/bin:/bin"},
        ).start()
        jobs = ("intake", "supply", "incident", "projection", "public")
        ports = dict.fromkeys(jobs, exposition)
        # the stub exposition asks for no credential; Prometheus still sends its bearer token
        prom, _ = start_prometheus(
            ports, tmp_path, "stub-scrape-token", alertmanager=f"127.0.0.1:{am_port}"
        )
        try:

            async def firing_hook() -> list[dict[str, Any]]:
                assert am.alive, am.log()
                assert prom.alive, prom.log()
                received[:] = [json.loads(h.body) for h in webhook.hooks]
                return [
                    a
                    for payload in received
                    for a in payload.get("alerts", [])
                    if a["labels"].get("alertname") == "DrugAlertOpen" and a["status"] == "firing"
                ]

            [alert, *_] = await poll_until(
                firing_hook, timeout=60, what="DrugAlertOpen at the webhook via Alertmanager"
            )
            assert alert["labels"]["district"] == "vesterbro"
            assert alert["annotations"]["runbook_url"] == "docs/runbooks/DrugAlertOpen.md"
            assert {p["receiver"] for p in received} == {"district-vesterbro"}
            assert {h.path for h in webhook.hooks} == {"/hooks/outreach"}
            assert all(h.accepted for h in webhook.hooks)

            expected = {
                recipients[r]["email"] for r in ("halmtorv-staff", "mh-staff", "outreach", "ops")
            }

            async def mailed() -> set[str]:
                return {str(m["To"]) for m in mails(tmp_path / "mail")} & expected

            assert await poll_until(
                lambda: _equal(mailed, expected), timeout=60, what="the district's e-mails"
            )
            assert recipients["sydhavn-staff"]["email"] not in {
                str(m["To"]) for m in mails(tmp_path / "mail")
            }
            async with httpx.AsyncClient(timeout=5) as c:
                alerts = (await c.get(f"http://127.0.0.1:{am_port}/api/v2/alerts")).json()
            assert {a["labels"]["alertname"] for a in alerts} == {"DrugAlertOpen"}
        finally:
            prom.terminate(grace=20)
            am.terminate(grace=20)


async def _equal(get: Any, expected: set[str]) -> bool:
    return bool(await get() == expected)
