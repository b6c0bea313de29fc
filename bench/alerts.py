"""Benchmark 5: drug alert latency, from the 202 of the overdose that completes a cluster to the
notification being accepted by its receiver (a webhook and an e-mail per alert).

One incident process (its alert worker and notifier, as deployed) on the benchmark city (one room
per district, 10 districts). Clusters are posted round robin over the districts at ``rate``
clusters per second: three overdoses each, 100 ms apart in event time, with
``DCR_ALERTS_WINDOW=PT1S`` so that every cluster is an episode of its own (the rule and the
delivery path are the same as with the 2 h default; only how many episodes fit in an hour
changes). The receivers run in this process: a signed-webhook endpoint (stdlib HTTP server) and an
SMTP server (aiosmtpd); arrival = when the receiver handled the request. Alert and delivery ids are
derived (uuid5) from the episode, so each arrival is matched to its 202 exactly.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid5

import httpx
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.env import isolated
from bench.stats import summarise
from harness.process import INCIDENT_APP, free_port
from services.incident.alerting import ALERT_NAMESPACE
from services.incident.notification import delivery_id

SECRET = "bench-webhook-secret-" + "x" * 24


class Arrivals:
    """Arrival times (perf_counter) by key, written from the receivers' threads."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, key: str) -> None:
        now = time.perf_counter()
        with self._lock:
            self.at.setdefault(key, now)


def _webhook_server(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrivals.record("webhook/" + json.loads(body)["alert_id"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)


class _MailHandler:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for line in (envelope.original_content or b"").splitlines():
            if line.lower().startswith(b"message-id:"):
                self.arrivals.record("email/" + line.split(b"<", 1)[1].split(b"@", 1)[0].decode())
        return "250 OK"


async def alerts(clusters: int = 200, rate: float = 2.0, keep_logs: bool = False) -> dict[str, Any]:
    async with isolated("alerts", facilities=10, keep_logs=keep_logs) as env:
        arrivals = Arrivals()
        hook = _webhook_server(arrivals)
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        smtp_port = free_port()
        smtp = Controller(_MailHandler(arrivals), hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        contacts = env.work_dir / "contacts.yaml"
        url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
        rooms = {f.district: f.id for f in env.city.facilities}
        contacts.write_text(
            yaml.safe_dump(
                {
                    "recipients": [
                        {"id": f"{d}-staff", "name": d, "facility": room, "email": f"{d}@x.dk",
                         "webhook": url}
                        for d, room in rooms.items()
                    ]
                }
            )
        )  # fmt: skip
        incident = env.service(
            "incident",
            INCIDENT_APP,
            DCR_CONTACTS_FILE=str(contacts),
            DCR_NOTIFY_ENABLED="true",
            DCR_NOTIFY_SMTP_PORT=str(smtp_port),
            DCR_NOTIFY_WEBHOOK_SECRET=SECRET,
            DCR_NOTIFY_POLL_S="0.05",
            DCR_ALERTS_WINDOW="PT1S",
        ).start()
        sent: dict[str, float] = {}  # "webhook/<alert id>" and "email/<delivery id>" -> 202
        try:
            await incident.wait_healthy(timeout=60)
            base = datetime.now(UTC) - timedelta(hours=1)
            districts = list(rooms)
            t0 = time.perf_counter()
            async with httpx.AsyncClient(base_url=incident.url, timeout=10) as client:
                for k in range(clusters):
                    district = districts[k % len(districts)]
                    room = rooms[district]
                    start = base + timedelta(seconds=3 * k)
                    for i in range(3):
                        at = start + timedelta(milliseconds=100 * i)
                        r = await client.post(
                            "/v1/incidents",
                            json={
                                "facility_id": room,
                                "occurred_at": at.isoformat(),
                                "kind": "opioid_overdose",
                                "severity": "severe",
                                "life_threatening": True,
                                "outcome": "recovered_on_site",
                            },
                            headers={"Authorization": f"Bearer {env.tokens[room]}"},
                        )
                        if r.status_code != 202:
                            raise RuntimeError(f"incident answered {r.status_code}: {r.text}")
                    accepted = time.perf_counter()
                    episode_start = start + timedelta(milliseconds=200)
                    alert = uuid5(
                        ALERT_NAMESPACE,
                        f"overdose_cluster/{district}/{episode_start.isoformat()}",
                    )
                    sent[f"webhook/{alert.hex}"] = accepted
                    sent[f"email/{delivery_id(UUID(alert.hex), f'{district}-staff', 'email')}"] = (
                        accepted
                    )
                    next_at = t0 + (k + 1) / rate  # the next cluster's scheduled instant
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))  # pacing
            deadline = time.monotonic() + 60
            while not set(sent) <= set(arrivals.at) and time.monotonic() < deadline:
                incident.check_alive()
                await asyncio.sleep(0.2)  # polling interval (deadline above)
            seconds = time.perf_counter() - t0
        finally:
            incident.terminate()
            smtp.stop()
            hook.shutdown()
    out: dict[str, Any] = {"params": {"clusters": clusters, "rate_per_s": rate, "districts": 10}}
    for channel in ("webhook", "email"):
        lat = [
            arrivals.at[k] - t
            for k, t in sent.items()
            if k.startswith(channel) and k in arrivals.at
        ]
        out[channel] = {
            **summarise(lat, seconds),
            "delivered": len(lat),
            "missing": sum(1 for k in sent if k.startswith(channel) and k not in arrivals.at),
        }
    return out
