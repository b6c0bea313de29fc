"""Notification texts, webhook signatures, and the notifier's retry/dead logic on fakes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from pydantic import SecretStr

from services.incident.alerting import AlertRules, AlertState, RaisedAlert, evaluate, void
from services.incident.delivery_store import Delivery
from services.incident.notification import Message, body_bytes, render, sign, verify
from services.incident.notifier import Notifier
from services.incident.senders import SendError
from services.incident.settings import NotifySettings
from shared.city import load_city
from shared.contacts import Contacts, Recipient
from shared.events.envelope import Envelope, facility_source
from shared.events.payloads import DrugAlertRaised, DrugCheckResult, IncidentReported, ReportVoided
from shared.events.vocabulary import IncidentKind, Outcome, Severity, Substance, VoidReason
from shared.settings import CitySettings, Environment, KafkaSettings

CITY = load_city(CitySettings().file)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SECRET = b"s" * 40
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


def overdose(minutes_ago: float, facility: str = "halmtorv") -> Envelope:
    data = IncidentReported(
        incident_id="i" * 10,
        kind=IncidentKind.OPIOID_OVERDOSE,
        severity=Severity.SEVERE,
        life_threatening=True,
        outcome=Outcome.RECOVERED_ON_SITE,
    )
    return Envelope.wrap(
        data,
        id=UUID(int=int(minutes_ago * 100)),
        source=facility_source(facility),
        time=NOW - timedelta(minutes=minutes_ago),
    )


def cluster_alert(now: datetime = NOW - timedelta(minutes=25)) -> Envelope:
    """Overdoses at NOW - 50, 40, 30 min, evaluated 5 min after the third (not late)."""
    state, alerts = AlertState(), []
    for m in (50, 40, 30):
        step = evaluate(AlertRules(zone=CITY.zone), state, overdose(m), "vesterbro", now)
        state, alerts = step.state, [*alerts, *step.alerts]
    [alert] = alerts
    return alert


def test_overdose_cluster_message_says_what_a_person_needs() -> None:
    m = render(cluster_alert(), CITY, "http://grafana/d/alerts")
    assert m.subject == "[DCR drug alert] Overdose cluster: 3 overdoses in Vesterbro within 2 h"
    assert "Since: 2026-11-28 12:30 CET" in m.text  # local time of the episode's start
    assert "Halmtorv (temporary room), Mændenes Hjem, Istedgade" in m.text
    assert "naloxone" in m.text and "http://grafana/d/alerts?var-district=vesterbro" in m.text
    assert "late reports" not in m.text
    assert m.body["district"] == "vesterbro" and m.body["overdoses_in_window"] == 3


def test_withdrawal_message_says_a_report_was_corrected_and_what_to_do() -> None:
    rules = AlertRules(zone=CITY.zone)
    now = NOW - timedelta(minutes=20)
    state = AlertState()
    for m in (50, 40, 30):
        state = evaluate(rules, state, overdose(m), "vesterbro", now).state
    alert = cluster_alert()
    data = alert.data
    assert isinstance(data, DrugAlertRaised)
    voided = Envelope.wrap(
        ReportVoided(target_id=overdose(40).id, reason=VoidReason.DUPLICATE),
        id=UUID(int=7),
        source=facility_source("halmtorv"),
        time=now,
    )
    raised = [RaisedAlert(data.alert_id, "vesterbro", data.episode, alert.time)]
    [withdrawal] = void(rules, state, voided, "vesterbro", raised, now).withdrawn
    m = render(withdrawal, CITY, "http://grafana/d/alerts")
    assert m.subject == (
        f"[DCR drug alert] Withdrawn: a report was corrected - Vesterbro ({data.alert_id[:8]})"
    )
    assert "is withdrawn: a report was corrected" in m.text
    assert "2 remain in its window, fewer than the 3 an alert needs" in m.text
    assert "Stand down the measures taken for this alert only" in m.text
    assert str(voided.id) not in m.text and "target" not in m.text
    assert m.body["type"] == "dk.dcr.alert.withdrawn" and m.body["alert_id"] == data.alert_id
    assert (m.body["overdoses_remaining"], m.body["threshold"]) == (2, 3)
    assert not HEX64.search(m.text + str(m.body))


def test_a_late_alert_says_so() -> None:
    m = render(cluster_alert(NOW + timedelta(hours=1)), CITY, "http://g")
    assert "raised from late reports" in m.text and m.body["late"] is True


def test_adulterant_message_names_the_substance() -> None:
    check = Envelope.wrap(
        DrugCheckResult(expected=Substance.HEROIN, found=(Substance.HEROIN, Substance.FENTANYL)),
        id=UUID(int=7),
        source=facility_source("nordvest"),
        time=NOW,
    )
    [alert] = evaluate(AlertRules(zone=CITY.zone), AlertState(), check, "nordvest", NOW).alerts
    m = render(alert, CITY, "http://g")
    assert "Adulterant found by drug checking in Nordvest: fentanyl" in m.subject
    assert "Warn clients that fentanyl was found" in m.text


def test_messages_hold_no_pseudonym_or_client_data() -> None:
    m = render(cluster_alert(), CITY, "http://g")
    assert not HEX64.search(m.subject + m.text + body_bytes(m).decode())
    assert "i" * 10 not in m.text + body_bytes(m).decode()  # not even the incident id


def test_signature_verifies_and_rejects_tampering_and_replays() -> None:
    body = b'{"a":1}'
    ts = int(NOW.timestamp())
    sig = sign(SECRET, ts, body)
    assert verify(SECRET, str(ts), body, sig, NOW)
    assert not verify(SECRET, str(ts), b'{"a":2}', sig, NOW)
    assert not verify(b"other" * 8, str(ts), body, sig, NOW)
    assert not verify(SECRET, str(ts + 1), body, sig, NOW)
    assert not verify(SECRET, str(ts), body, sig, NOW + timedelta(minutes=6))
    assert not verify(SECRET, "not-a-number", body, sig, NOW)


@dataclass
class FakeStore:
    rows: dict[tuple[UUID, str, str], Delivery] = field(default_factory=dict)
    state: dict[tuple[UUID, str, str], str] = field(default_factory=dict)

    async def enqueue(self, rows: list[Delivery]) -> int:
        new = [d for d in rows if (d.event_id, d.recipient, d.channel) not in self.rows]
        for d in new:
            self.rows[(d.event_id, d.recipient, d.channel)] = d
            self.state[(d.event_id, d.recipient, d.channel)] = "pending"
        return len(new)

    async def claim(self, limit: int, lease_s: float) -> list[Delivery]:
        due = [k for k, s in self.state.items() if s == "pending"][:limit]
        for k in due:
            self.rows[k] = replace(self.rows[k], attempts=self.rows[k].attempts + 1)
        return [self.rows[k] for k in due]

    async def delivered(self, d: Delivery) -> None:
        self.state[(d.event_id, d.recipient, d.channel)] = "delivered"

    async def failed(self, d: Delivery, error: str, retry_in_s: float | None) -> None:
        self.state[(d.event_id, d.recipient, d.channel)] = (
            "dead" if retry_in_s is None else "pending"
        )


@dataclass
class FakeSender:
    fail: bool = False
    sent: list[tuple[str, UUID]] = field(default_factory=list)

    async def send(self, address: str, message: Message, delivery_id: UUID) -> None:
        if self.fail:
            raise SendError("smtp: refused")
        self.sent.append((address, delivery_id))


def notifier(store: FakeStore, email: FakeSender, hook: FakeSender) -> Notifier:
    contacts = Contacts(
        recipients=(
            Recipient(id="room", name="R", facility="halmtorv", email="r@x.dk"),
            Recipient(id="out", name="O", districts="all", email="o@x.dk", webhook="http://h/x"),
            Recipient(id="far", name="F", facility="amager", email="f@x.dk"),
        )
    )
    return Notifier(
        city=CITY,
        contacts=contacts,
        store=store,  # type: ignore[arg-type]
        email=email,
        webhook=hook,
        kafka=KafkaSettings(),
        settings=NotifySettings(
            max_attempts=3, backoff_s=1, backoff_max_s=3, webhook_secret=SecretStr("w" * 32)
        ),
    )


async def test_every_district_recipient_and_channel_once_and_no_other_district() -> None:
    store, email, hook = FakeStore(), FakeSender(), FakeSender()
    n = notifier(store, email, hook)
    alert = cluster_alert()
    rows = n.deliveries_for(alert)
    assert await store.enqueue(rows) == 3 and await store.enqueue(n.deliveries_for(alert)) == 0
    await n.deliver_due()
    assert sorted(a for a, _ in email.sent) == ["o@x.dk", "r@x.dk"]
    assert [a for a, _ in hook.sent] == ["http://h/x"]
    await n.deliver_due()
    assert len(email.sent) == 2 and len(hook.sent) == 1  # delivered rows are not sent again


async def test_failures_back_off_then_die() -> None:
    store, email, hook = FakeStore(), FakeSender(fail=True), FakeSender()
    n = notifier(store, email, hook)
    await store.enqueue(n.deliveries_for(cluster_alert()))
    for _ in range(3):
        await n.deliver_due()
    assert sorted(store.state.values()) == ["dead", "dead", "delivered"]
    assert [n.backoff(a) for a in (1, 2, 3, 4)] == [1, 2, 3, 3]


@pytest.mark.parametrize("env", [None, "prod"])
def test_prod_refuses_the_development_webhook_secret(
    monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    """Unset DCR_ENV means prod: the notifier fails closed unless dev mode is explicit."""
    monkeypatch.delenv("DCR_NOTIFY_WEBHOOK_SECRET", raising=False)
    if env is None:
        monkeypatch.delenv("DCR_ENV", raising=False)
    else:
        monkeypatch.setenv("DCR_ENV", env)
    with pytest.raises(ValueError, match="DCR_NOTIFY_WEBHOOK_SECRET"):
        NotifySettings()
    monkeypatch.setenv("DCR_ENV", "dev")
    assert NotifySettings().env is Environment.DEV  # explicit development mode only
    monkeypatch.setenv("DCR_ENV", "prod")
    monkeypatch.setenv("DCR_NOTIFY_WEBHOOK_SECRET", "x" * 32)
    assert NotifySettings().webhook_secret.get_secret_value() == "x" * 32
