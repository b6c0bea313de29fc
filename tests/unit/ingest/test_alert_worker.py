"""The alert worker's per-record handling on fakes: persist before publish, publish once, retry
the same alert after a failed publish, skip what it cannot use, apply a void once (withdrawal
published once, surviving a restart)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY

from services.incident.alert_worker import AlertWorker
from services.incident.alerting import AlertRules, RaisedAlert
from services.incident.settings import AlertSettings
from shared.city import load_city
from shared.events.envelope import Envelope, facility_source, to_headers, to_value
from shared.events.payloads import (
    DrugAlertRaised,
    DrugAlertWithdrawn,
    IncidentReported,
    ReportVoided,
)
from shared.events.vocabulary import IncidentKind, Outcome, Severity, Substance, VoidReason
from shared.ingest.ports import InMemoryPublisher, PublishError
from shared.settings import CitySettings, KafkaSettings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass
class FakeAlertStore:
    """In-memory stand-in for services.incident.alert_store.AlertStore."""

    overdoses: dict[tuple[str, UUID], tuple[str, str, UUID, datetime]] = field(default_factory=dict)
    episodes: dict[str, Envelope] = field(default_factory=dict)
    published: set[UUID] = field(default_factory=set)

    async def load(
        self, since: datetime
    ) -> tuple[list[tuple[str, str, UUID, datetime]], list[tuple[str, Substance, datetime]]]:
        return [o for o in self.overdoses.values() if o[3] >= since], []

    async def record(
        self, overdose: tuple[str, str, UUID, datetime] | None, alerts: Sequence[Envelope]
    ) -> None:
        if overdose is not None:
            self.overdoses.setdefault((overdose[1], overdose[2]), overdose)
        for alert in alerts:
            self.episodes.setdefault(alert.data.episode, alert)  # type: ignore[attr-defined]

    async def unpublished(self) -> list[Envelope]:
        return [e for e in self.episodes.values() if e.id not in self.published]

    async def mark_published(self, alert_id: UUID) -> None:
        self.published.add(alert_id)

    voided: dict[tuple[str, UUID], datetime] = field(default_factory=dict)
    withdrawn: set[str] = field(default_factory=set)
    outbox: dict[UUID, Envelope] = field(default_factory=dict)

    async def outbox_unpublished(self) -> list[Envelope]:
        return [e for e in self.outbox.values() if e.id not in self.published]

    async def mark_outbox_published(self, event_id: UUID) -> None:
        self.published.add(event_id)

    async def voids(self, since: datetime) -> list[tuple[str, UUID, datetime]]:
        return [(s, t, at) for (s, t), at in self.voided.items() if at >= since]

    async def withdrawn_episodes(self, since: datetime) -> list[str]:
        return [
            e.data.episode  # type: ignore[attr-defined]
            for e in self.episodes.values()
            if e.data.alert_id in self.withdrawn and e.time >= since  # type: ignore[attr-defined]
        ]

    async def raised_alerts(self, district: str, since: datetime) -> list[RaisedAlert]:
        out = []
        for e in self.episodes.values():
            d = e.data
            assert isinstance(d, DrugAlertRaised)
            if d.district == district and e.time >= since and d.alert_id not in self.withdrawn:
                out.append(RaisedAlert(d.alert_id, d.district, d.episode, e.time))
        return out

    async def record_void(
        self, void: Envelope, withdrawn: Sequence[Envelope], alerts: Sequence[Envelope]
    ) -> None:
        data = void.data
        assert isinstance(data, ReportVoided)
        self.voided.setdefault((void.source, data.target_id), void.time)
        self.overdoses.pop((void.source, data.target_id), None)
        for w in withdrawn:
            assert isinstance(w.data, DrugAlertWithdrawn)
            if w.data.alert_id not in self.withdrawn:
                self.withdrawn.add(w.data.alert_id)
                self.outbox[w.id] = w
        await self.record(None, alerts)


def record_of(env: Envelope) -> tuple[list[tuple[str, bytes]], bytes]:
    return [(k, v.encode()) for k, v in to_headers(env).items()], to_value(env)


def void_record(
    target: tuple[list[tuple[str, bytes]], bytes],
) -> tuple[list[tuple[str, bytes]], bytes]:
    headers = dict(target[0])
    env = Envelope.wrap(
        ReportVoided(target_id=UUID(headers["ce_id"].decode()), reason=VoidReason.MISTAKEN),
        id=uuid4(),
        source=headers["ce_source"].decode(),
        time=NOW,
    )
    return record_of(env)


def overdose_record(
    minutes_ago: float, facility: str = "halmtorv"
) -> tuple[list[tuple[str, bytes]], bytes]:
    data = IncidentReported(
        incident_id=uuid4().hex,
        kind=IncidentKind.OPIOID_OVERDOSE,
        severity=Severity.SEVERE,
        life_threatening=True,
        outcome=Outcome.RECOVERED_ON_SITE,
    )
    env = Envelope.wrap(
        data,
        id=uuid4(),
        source=facility_source(facility),
        time=NOW - timedelta(minutes=minutes_ago),
    )
    return [(k, v.encode()) for k, v in to_headers(env).items()], to_value(env)


def worker(store: FakeAlertStore, publisher: InMemoryPublisher) -> AlertWorker:
    city = load_city(CitySettings().file)
    return AlertWorker(
        rules=AlertRules(zone=city.zone),
        city=city,
        store=store,  # type: ignore[arg-type]
        publisher=publisher,
        kafka=KafkaSettings(),
        settings=AlertSettings(),
        clock=lambda: NOW,
    )


async def test_overdoses_are_persisted_and_the_alert_published_once() -> None:
    store, publisher = FakeAlertStore(), InMemoryPublisher()
    w = worker(store, publisher)
    records = [overdose_record(m) for m in (50, 40, 30)]
    for headers, value in records:
        await w.handle(headers, value)
    for headers, value in records:  # redelivery after a crash before the offset commit
        await w.handle(headers, value)
    await w.handle(*overdose_record(20, facility="maendenes-hjem"))  # same episode
    assert len(store.overdoses) == 4
    [alert] = publisher.published
    assert alert.type == "dk.dcr.alert.raised" and alert.key == "vesterbro"
    assert store.published == {alert.id}


async def test_failed_publish_leaves_the_alert_stored_and_it_is_published_later() -> None:
    store, publisher = FakeAlertStore(), InMemoryPublisher(fail=True)
    w = worker(store, publisher)
    await w.handle(*overdose_record(50))
    await w.handle(*overdose_record(40))
    with pytest.raises(PublishError):
        await w.handle(*overdose_record(30))
    [stored] = store.episodes.values()
    assert store.published == set()
    publisher.fail = False
    fresh = worker(store, publisher)  # the next session: a restart rebuilds from the store
    await fresh.flush()
    assert [a.id for a in publisher.published] == [stored.id]
    await fresh.flush()
    assert len(publisher.published) == 1


def ignored(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("dcr_drug_alert_reports_ignored_total", {"reason": reason}) or 0
    )


async def test_records_it_cannot_use_are_skipped_and_counted() -> None:
    store, publisher = FakeAlertStore(), InMemoryPublisher()
    w = worker(store, publisher)
    before = {r: ignored(r) for r in ("undecodable", "unknown_facility", "too_late")}
    headers, value = overdose_record(10)
    await w.handle([], value)  # no CloudEvents headers
    await w.handle(headers, b"not json")
    await w.handle(*overdose_record(10, facility="atlantis"))  # not a facility of the city
    too_old = AlertSettings().max_lateness.total_seconds() / 60 + 1
    await w.handle(*overdose_record(too_old))
    assert store.overdoses == {} and publisher.published == []
    after = {r: ignored(r) - before[r] for r in before}
    assert after == {"undecodable": 2, "unknown_facility": 1, "too_late": 1}


async def test_a_void_withdraws_once_and_a_restart_keeps_it_applied() -> None:
    store, publisher = FakeAlertStore(), InMemoryPublisher()
    w = worker(store, publisher)
    records = [overdose_record(m) for m in (50, 40, 30)]
    for headers, value in records:
        await w.handle(headers, value)
    [raised] = publisher.published
    void = void_record(records[1])
    await w.handle(*void)
    await w.handle(*void)  # redelivered
    assert [e.type for e in publisher.published] == [
        "dk.dcr.alert.raised",
        "dk.dcr.alert.withdrawn",
    ]
    assert len(store.overdoses) == 2 and len(store.voided) == 1
    withdrawn = publisher.published[1].data
    assert isinstance(withdrawn, DrugAlertWithdrawn)
    assert withdrawn.alert_id == raised.id.hex
    fresh = worker(store, publisher)  # a restart or a new leader
    await fresh.restore()
    before = ignored("voided")
    await fresh.handle(*records[1])  # the voided report redelivered: not counted again
    await fresh.handle(*void)
    assert ignored("voided") - before == 1
    assert len(store.overdoses) == 2 and len(publisher.published) == 2


async def test_a_void_arriving_before_its_report_keeps_it_from_counting() -> None:
    store, publisher = FakeAlertStore(), InMemoryPublisher()
    w = worker(store, publisher)
    records = [overdose_record(m) for m in (50, 40, 30)]
    await w.handle(*void_record(records[2]))
    fresh = worker(store, publisher)  # even across a restart in between
    await fresh.restore()
    for headers, value in records:
        await fresh.handle(headers, value)
    assert publisher.published == [] and len(store.overdoses) == 2
