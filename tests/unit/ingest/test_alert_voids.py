"""Voids and the drug alert rule (pure): a voided report never counts; an alert that loses its
basis is withdrawn once; one that keeps it is left alone (services/incident/alerting.py,
"Corrections")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from uuid import UUID, uuid4, uuid5

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.incident.alerting import (
    ALERT_NAMESPACE,
    AlertState,
    RaisedAlert,
    VoidStep,
    evaluate,
    void,
)
from shared.events.envelope import Envelope, facility_source
from shared.events.payloads import DrugAlertRaised, DrugAlertWithdrawn, ReportVoided
from shared.events.vocabulary import IncidentKind, VoidReason
from tests.unit.ingest.test_alerting import FACILITY_DISTRICT, NOW, RULES, T0, incident


def voiding(target: Envelope, minutes: float = 90) -> Envelope:
    """The target's room voids it (same source)."""
    assert target.facility_id is not None
    return Envelope.wrap(
        ReportVoided(target_id=target.id, reason=VoidReason.DUPLICATE),
        id=uuid4(),
        source=facility_source(target.facility_id),
        time=T0 + timedelta(minutes=minutes),
    )


class Driver:
    """Feeds incidents and voids as services.incident.alert_worker does; keeps what its store
    keeps (alerts per episode, withdrawals per alert)."""

    def __init__(self) -> None:
        self.state = AlertState()
        self.raised: dict[str, Envelope] = {}
        self.withdrawn: dict[str, Envelope] = {}
        self.voided_arrivals = 0

    def feed(self, events: Iterable[Envelope], now: datetime = NOW) -> list[VoidStep]:
        steps = []
        for event in events:
            assert event.facility_id is not None
            district = FACILITY_DISTRICT[event.facility_id]
            if isinstance(event.data, ReportVoided):
                step = void(RULES, self.state, event, district, self.standing(), now)
                steps.append(step)
                for w in step.withdrawn:
                    assert isinstance(w.data, DrugAlertWithdrawn)
                    self.withdrawn.setdefault(w.data.alert_id, w)
                alerts: Sequence[Envelope] = step.alerts
            else:
                s = evaluate(RULES, self.state, event, district, now)
                self.voided_arrivals += s.voided
                step = VoidStep(s.state)
                alerts = s.alerts
            for a in alerts:
                assert isinstance(a.data, DrugAlertRaised)
                self.raised.setdefault(a.data.episode, a)
            self.state = step.state
        return steps

    def standing(self) -> list[RaisedAlert]:
        out = []
        for a in self.raised.values():
            assert isinstance(a.data, DrugAlertRaised)
            if a.data.alert_id not in self.withdrawn:
                out.append(RaisedAlert(a.data.alert_id, a.data.district, a.data.episode, a.time))
        return out

    def standing_episodes(self) -> set[str]:
        return {a.episode for a in self.standing()}


def test_a_report_voided_before_it_arrives_never_counts() -> None:
    third = incident(20)
    d = Driver()
    [step] = d.feed([voiding(third), incident(0), incident(10), third])
    assert step.withdrawn == () and step.alerts == ()
    assert d.raised == {} and d.voided_arrivals == 1
    d.feed([third])  # a redelivery of the voided report: still not counted
    assert d.raised == {} and d.voided_arrivals == 2


def test_a_report_voided_before_the_alert_no_longer_counts_later() -> None:
    first = incident(0)
    d = Driver()
    [step] = d.feed([first, incident(10), voiding(first, 15), incident(20)])
    assert step == VoidStep(step.state) and d.raised == {}  # two remain: no alert, nothing sent
    d.feed([incident(30)])
    [alert] = d.raised.values()
    assert isinstance(alert.data, DrugAlertRaised)
    assert alert.time == T0 + timedelta(minutes=30)  # 10, 20, 30: the voided one never counted


def test_an_alert_that_loses_its_basis_is_withdrawn_once() -> None:
    reports = [incident(0), incident(10, "maendenes-hjem"), incident(20)]
    d = Driver()
    d.feed(reports)
    [alert] = d.raised.values()
    assert isinstance(alert.data, DrugAlertRaised)
    void_of_second = voiding(reports[1])
    [step] = d.feed([void_of_second])
    [w] = step.withdrawn
    data = w.data
    assert isinstance(data, DrugAlertWithdrawn)
    assert w.type == "dk.dcr.alert.withdrawn" and w.source == "/districts/vesterbro"
    assert w.id == uuid5(ALERT_NAMESPACE, alert.data.episode + "/withdrawn")
    assert (data.alert_id, data.episode, data.since) == (
        alert.data.alert_id,
        alert.data.episode,
        alert.time,
    )
    assert (data.overdoses_remaining, data.threshold) == (2, 3)
    assert step.alerts == ()
    assert d.feed([void_of_second]) == [VoidStep(d.state)]  # redelivered void: nothing again
    assert d.feed([reports[1]]) == [] and len(d.raised) == 1  # redelivered report: not counted


def test_a_cluster_brought_back_after_a_withdrawal_is_a_new_alert() -> None:
    reports = [incident(0), incident(10), incident(20)]
    d = Driver()
    d.feed([*reports, voiding(reports[1])])
    [first] = d.raised
    assert d.standing() == []
    d.feed([incident(10, "maendenes-hjem")])  # the corrected report, sent as a new event
    assert [a.episode for a in d.standing()] == [first + "/2"]


def test_an_alert_whose_basis_holds_stays_and_nothing_is_sent() -> None:
    reports = [incident(m) for m in (0, 10, 20, 30)]  # N + 1 = 4 within the window
    d = Driver()
    d.feed(reports)
    for target in (reports[0], reports[2]):  # the first (before the start) or one inside
        e = Driver()
        e.feed(reports)
        [step] = e.feed([voiding(target)])
        assert step.withdrawn == () and step.alerts == ()
        assert e.standing_episodes() == d.standing_episodes()


def test_a_void_far_from_an_alert_does_not_touch_it() -> None:
    late = incident(200)
    d = Driver()
    d.feed([incident(0), incident(10), incident(20), late], now=T0 + timedelta(hours=4))
    [step] = d.feed([voiding(late, 210)], now=T0 + timedelta(hours=4))
    assert step.withdrawn == () and len(d.standing()) == 1


def test_a_void_of_another_rooms_or_kind_of_report_changes_nothing() -> None:
    reports = [incident(0), incident(10), incident(20)]
    d = Driver()
    d.feed([*reports, incident(25, kind=IncidentKind.SEIZURE)])
    other_room = Envelope.wrap(
        ReportVoided(target_id=reports[0].id, reason=VoidReason.MISTAKEN),
        id=uuid4(),
        source=facility_source("maendenes-hjem"),  # not the reporting room: not its report
        time=T0 + timedelta(minutes=40),
    )
    [step] = d.feed([other_room])
    assert step.withdrawn == () and len(d.standing()) == 1


def test_splitting_a_cluster_raises_the_part_no_alert_covers() -> None:
    # 0, 10, 20 (alert at 0:20) ... 1:40 bridges to 2:10, 2:20, 2:30 (>= 3 continuously from
    # 0:20): one episode, one alert.
    reports = [incident(m) for m in (0, 10, 20, 100, 130, 140, 150)]
    now = T0 + timedelta(hours=3)
    d = Driver()
    d.feed(reports, now=now)
    assert len(d.raised) == 1
    without = Driver()
    without.feed([r for r in reports if r is not reports[3]], now=now)
    assert len(without.raised) == 2  # without 1:40, 2:30 starts an episode of its own
    [step] = d.feed([voiding(reports[3], 160)], now=now)
    assert step.withdrawn == () and len(step.alerts) == 1
    assert d.standing_episodes() == without.standing_episodes()


def test_an_alert_older_than_the_lateness_horizon_is_not_withdrawn() -> None:
    reports = [incident(m) for m in (0, 10, 20)]
    d = Driver()
    d.feed(reports)
    later = T0 + RULES.max_lateness + timedelta(minutes=21)
    [step] = d.feed([voiding(reports[2], 400)], now=later)
    assert step.withdrawn == () and len(d.standing()) == 1


# --- property: a void before the alert makes the alerts those of a world without the report ---

FACILITIES = ("halmtorv", "maendenes-hjem", "nordvest")


@st.composite
def reports(draw: st.DrawFn) -> list[Envelope]:
    """Overdoses (and a few seizures) in arrival order, on a 5-minute grid within 3 hours."""
    out = []
    for i in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from([IncidentKind.OPIOID_OVERDOSE] * 4 + [IncidentKind.SEIZURE]))
        facility = draw(st.sampled_from(FACILITIES))
        minutes = 5 * draw(st.integers(0, 36))
        out.append(incident(minutes, facility, kind, event_id=uuid5(UUID(int=0), str(i))))
    return out


PROPERTY = settings(
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LATER = T0 + timedelta(hours=4)


@PROPERTY
@given(events=reports(), data=st.data())
def test_a_void_before_its_report_arrives_equals_a_world_without_the_report(
    events: list[Envelope], data: st.DataObject
) -> None:
    target = data.draw(st.integers(0, len(events) - 1))
    at = data.draw(st.integers(0, target))
    with_void = Driver()
    with_void.feed([*events[:at], voiding(events[target], 190), *events[at:]], now=LATER)
    without = Driver()
    without.feed([e for i, e in enumerate(events) if i != target], now=LATER)
    assert with_void.raised == without.raised and with_void.withdrawn == {}


@PROPERTY
@given(events=reports(), data=st.data())
def test_a_void_right_after_a_report_that_raised_nothing_equals_a_world_without_it(
    events: list[Envelope], data: st.DataObject
) -> None:
    target = data.draw(st.integers(0, len(events) - 1))
    d = Driver()
    d.feed(events[:target])
    before = dict(d.raised)
    d.feed([events[target]], now=LATER)
    if d.raised != before:
        return  # the report raised an alert: covered by the withdrawal tests
    d.feed([voiding(events[target], 190), *events[target + 1 :]], now=LATER)
    without = Driver()
    without.feed([e for i, e in enumerate(events) if i != target], now=LATER)
    assert d.standing_episodes() == without.standing_episodes() and d.withdrawn == {}


@PROPERTY
@given(events=reports(), data=st.data())
def test_after_a_void_at_any_point_every_cluster_left_has_a_standing_alert(
    events: list[Envelope], data: st.DataObject
) -> None:
    """Whenever the void comes, nothing is silently dropped: an alert stands exactly where the
    remaining reports still reach the threshold near its start, and every part of a cluster
    left is covered by a standing alert."""
    target = data.draw(st.integers(0, len(events) - 1))
    at = data.draw(st.integers(target + 1, len(events)))
    d = Driver()
    d.feed([*events[:at], voiding(events[target], 190), *events[at:]], now=LATER)
    window = d.state.districts.get("vesterbro")
    spans = window.episodes if window else ()
    for a in d.standing():
        if a.district == "vesterbro":
            assert any(s.start < a.start + RULES.window and s.end > a.start for s in spans)
    for s in spans:
        assert any(
            s.start < a.start + RULES.window and s.end > a.start
            for a in d.standing()
            if a.district == "vesterbro"
        ), s


# --- the state a void leaves (found by mutation testing, docs/mutation-report.md) ---


def test_a_void_too_late_to_change_an_alert_still_drops_its_report_and_is_remembered() -> None:
    reports = [incident(m) for m in (0, 10, 20)]
    d = Driver()
    d.feed(reports)
    later = T0 + RULES.max_lateness + timedelta(minutes=21)  # the report at 0:20 is too old
    target = voiding(reports[2], 400)
    [step] = d.feed([target], now=later)
    assert step.withdrawn == () and step.alerts == ()
    kept = step.state.districts["vesterbro"].overdoses
    assert [o.event_id for o in kept] == [reports[0].id, reports[1].id]  # within the horizon
    assert step.state.voided == {(target.source, reports[2].id): target.time}


def test_a_repeated_void_keeps_the_later_void_time() -> None:
    report = incident(0)
    d = Driver()
    d.feed([report])
    first, again = voiding(report, 90), voiding(report, 50)  # redelivered with an older time
    d.feed([first, again])
    assert d.state.voided == {(first.source, report.id): first.time}


def test_only_a_void_is_applied_as_one() -> None:
    report = incident(0)
    with pytest.raises(TypeError, match=f"not a void: {report.type}"):
        void(RULES, AlertState(), report, "vesterbro", [], NOW)


def test_a_restart_remembers_withdrawn_alerts_so_a_cluster_brought_back_is_new() -> None:
    reports = [incident(0), incident(10), incident(20)]
    d = Driver()
    d.feed([*reports, voiding(reports[1])])
    [first] = d.raised
    s = d.state
    d.state = AlertState.restore(
        RULES,
        NOW,
        [
            (dist, o.source, o.event_id, o.time)
            for dist, w in s.districts.items()
            for o in w.overdoses
        ],
        [],
        [(src, target, at) for (src, target), at in s.voided.items()],
        s.withdrawn,
    )
    assert d.state.withdrawn == frozenset({first})
    d.feed([incident(10, "maendenes-hjem")])  # the corrected report, after the restart
    assert [a.episode for a in d.standing()] == [first + "/2"]


def _withdrawn_alerts(d: Driver) -> dict[datetime, DrugAlertWithdrawn]:
    out = {}
    for w in d.withdrawn.values():
        assert isinstance(w.data, DrugAlertWithdrawn)
        out[w.data.since] = w.data
    return out


def test_an_alert_exactly_at_the_lateness_horizon_can_still_be_withdrawn() -> None:
    reports = [incident(m) for m in (0, 10, 20)]
    d = Driver()
    d.feed(reports)
    start = T0 + timedelta(minutes=20)
    [step] = d.feed([voiding(reports[2], 400)], now=start + RULES.max_lateness)
    assert [w.data.since for w in step.withdrawn] == [start]  # type: ignore[union-attr]


def test_a_cluster_that_ends_where_the_alert_starts_does_not_hold_it() -> None:
    # 0:30, 1:00, 1:30 raise an alert at 1:30; a late report from exactly one window before
    # (-0:30) makes the count 3 on [1:00, 1:30) too. Voiding the 1:30 report leaves -0:30,
    # 0:30, 1:00: at the threshold until 1:30 only, when the alert's own window begins.
    now = T0 + timedelta(hours=4)
    reports = [incident(m) for m in (30, 60, 90)]
    d = Driver()
    d.feed([*reports, incident(-30, "maendenes-hjem")], now=now)
    assert len(d.raised) == 1
    d.feed([voiding(reports[2], 100)], now=now)
    start = T0 + timedelta(minutes=90)
    withdrawn = _withdrawn_alerts(d)
    assert list(withdrawn) == [start]
    # left in (1:30 - 2 h, 1:30]: 0:30 and 1:00 (-0:30 lies exactly on the open bound)
    assert withdrawn[start].overdoses_remaining == 2


def test_a_cluster_that_starts_where_the_alerts_window_ends_does_not_hold_it() -> None:
    # 0:30, 1:00, 1:30 raise an alert at 1:30; 3:10, 3:20 with 1:30 raise another at 3:20.
    # Voiding 1:30 leaves a cluster from 3:30 (= 1:30 + window) on: the first alert goes.
    now = T0 + timedelta(hours=5)
    reports = [incident(m) for m in (30, 60, 90, 190, 200, 210)]
    d = Driver()
    d.feed(reports, now=now)
    assert len(d.raised) == 2
    d.feed([voiding(reports[2], 220)], now=now)
    assert list(_withdrawn_alerts(d)) == [T0 + timedelta(minutes=90)]
