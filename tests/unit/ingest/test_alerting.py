"""The drug alert rule (pure): overdose clusters once per episode, adulterants once per day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4, uuid5
from zoneinfo import ZoneInfo

import pytest

from services.incident.alerting import (
    ALERT_NAMESPACE,
    AlertRules,
    AlertState,
    OpenAlert,
    Step,
    due_resolutions,
    evaluate,
)
from shared.events.envelope import Envelope, facility_source
from shared.events.payloads import DrugAlertRaised, DrugCheckResult, IncidentReported
from shared.events.vocabulary import AlertReason, IncidentKind, Outcome, Severity, Substance

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
RULES = AlertRules(
    threshold=3,
    window=timedelta(hours=2),
    max_lateness=timedelta(hours=6),
    zone=ZoneInfo("Europe/Copenhagen"),
)
FACILITY_DISTRICT = {
    "halmtorv": "vesterbro",
    "maendenes-hjem": "vesterbro",
    "nordvest": "nordvest",
    "amager": "amager",
}


def incident(
    minutes: float,
    facility: str = "halmtorv",
    kind: IncidentKind = IncidentKind.OPIOID_OVERDOSE,
    event_id: UUID | None = None,
) -> Envelope:
    data = IncidentReported(
        incident_id=uuid4().hex,
        kind=kind,
        severity=Severity.SEVERE,
        life_threatening=True,
        outcome=Outcome.RECOVERED_ON_SITE,
    )
    return Envelope.wrap(
        data,
        id=event_id or uuid4(),
        source=facility_source(facility),
        time=T0 + timedelta(minutes=minutes),
    )


def drug_check(
    minutes: float, expected: Substance, *found: Substance, facility: str = "halmtorv"
) -> Envelope:
    data = DrugCheckResult(expected=expected, found=found)
    return Envelope.wrap(
        data, id=uuid4(), source=facility_source(facility), time=T0 + timedelta(minutes=minutes)
    )


def run(
    events: Iterable[Envelope],
    state: AlertState | None = None,
    now: datetime = NOW,
    rules: AlertRules = RULES,
) -> tuple[AlertState, list[Envelope]]:
    """Feed events in the given (arrival) order; collect every alert raised."""
    state = state or AlertState()
    alerts: list[Envelope] = []
    for event in events:
        assert event.facility_id is not None
        step: Step = evaluate(rules, state, event, FACILITY_DISTRICT[event.facility_id], now)
        state = step.state
        alerts.extend(step.alerts)
    return state, alerts


def data_of(alert: Envelope) -> DrugAlertRaised:
    assert isinstance(alert.data, DrugAlertRaised)
    return alert.data


def test_third_overdose_within_the_window_raises_one_alert() -> None:
    _, alerts = run([incident(0), incident(30)])
    assert alerts == []
    _, alerts = run([incident(0), incident(30), incident(60, facility="maendenes-hjem")])
    [alert] = alerts
    data = data_of(alert)
    assert alert.type == "dk.dcr.alert.raised"
    assert alert.source == "/districts/vesterbro" and alert.key == "vesterbro"
    assert data.reason is AlertReason.OVERDOSE_CLUSTER and data.district == "vesterbro"
    assert data.overdoses_in_window == 3
    assert data.window() == (T0 + timedelta(minutes=60) - RULES.window, T0 + timedelta(minutes=60))
    assert data.facility_id == "maendenes-hjem"  # whose report completed the cluster
    assert alert.id == uuid5(ALERT_NAMESPACE, data.episode) and data.alert_id == alert.id.hex


def test_overdoses_spread_wider_than_the_window_raise_nothing() -> None:
    _, alerts = run([incident(0), incident(61), incident(121)])  # never 3 within 2 h
    assert alerts == []


def test_further_overdoses_in_the_same_episode_raise_nothing() -> None:
    _, alerts = run(
        [incident(m) for m in (0, 10, 20, 30, 100, 170, 230)], now=T0 + timedelta(hours=4)
    )
    assert len(alerts) == 1


def test_a_new_episode_after_the_count_fell_below_raises_again() -> None:
    first = [incident(m) for m in (0, 10, 20)]
    # the window count drops below 3 at 0:00 + 2 h; the next cluster is a new episode
    second = [incident(m) for m in (200, 210, 220)]
    _, alerts = run([*first, *second], now=T0 + timedelta(hours=4))
    assert len(alerts) == 2
    assert len({a.id for a in alerts}) == 2
    assert [data_of(a).window_end for a in alerts] == [
        T0 + timedelta(minutes=20),
        T0 + timedelta(minutes=220),
    ]


def test_count_touching_the_threshold_continuously_is_one_episode() -> None:
    # new overdoses arrive before the oldest leave the window: >= 3 from 0:20 until 4:15
    minutes = [0, 10, 20, 115, 125, 135, 230, 240]
    _, alerts = run([incident(m) for m in minutes], now=T0 + timedelta(hours=5))
    assert len(alerts) == 1


def test_duplicate_delivery_counts_once() -> None:
    a, b = incident(0), incident(10)
    _, alerts = run([a, b, a, b])
    assert alerts == []


@pytest.mark.parametrize("order", [(2, 0, 1), (1, 2, 0), (0, 2, 1)])
def test_out_of_order_arrival_raises_exactly_one(order: tuple[int, int, int]) -> None:
    events = [incident(0), incident(30), incident(60)]
    _, alerts = run([events[i] for i in order])
    assert len(alerts) == 1
    assert data_of(alerts[0]).window_end == T0 + timedelta(minutes=60)


def test_late_report_moving_the_episode_start_earlier_raises_nothing_new() -> None:
    state, alerts = run([incident(0), incident(30), incident(60)])
    assert len(alerts) == 1
    _, more = run([incident(45)], state)  # now 3 within the window already at 0:45
    assert more == []


def test_late_report_bridging_two_episodes_raises_nothing_new() -> None:
    now = T0 + timedelta(hours=5)
    state, alerts = run([incident(m) for m in (0, 10, 20, 200, 210, 220)], now=now)
    assert len(alerts) == 2
    _, more = run([incident(100), incident(110)], state, now=now)  # gap filled
    assert more == []


def test_late_report_completing_an_earlier_cluster_raises_it() -> None:
    state, alerts = run([incident(0), incident(30)])
    _, alerts = run([incident(-20)], state)  # arrives last, happened first
    assert len(alerts) == 1
    assert data_of(alerts[0]).window_end == T0 + timedelta(minutes=30)


def test_reports_older_than_the_lateness_limit_raise_nothing_and_say_so() -> None:
    late = T0 + RULES.max_lateness + timedelta(minutes=61)
    _, alerts = run([incident(0), incident(30), incident(60)], now=late)
    assert alerts == []
    step = evaluate(RULES, AlertState(), incident(0), "vesterbro", late)
    assert step.too_late and step.alerts == ()
    assert not evaluate(RULES, AlertState(), incident(60), "vesterbro", NOW).too_late


def test_same_event_id_from_two_facilities_counts_twice() -> None:
    """The collision case: halmtorv and maendenes-hjem both choose event id ...00d1, then
    halmtorv posts ...00d2: three overdoses in vesterbro, one alert."""
    d1, d2 = UUID(int=0xD1), UUID(int=0xD2)
    events = [
        incident(0, "halmtorv", event_id=d1),
        incident(10, "maendenes-hjem", event_id=d1),
        incident(20, "halmtorv", event_id=d2),
    ]
    state, alerts = run(events)
    assert [data_of(a).overdoses_in_window for a in alerts] == [3]
    assert state.knows_overdose("vesterbro", facility_source("maendenes-hjem"), d1)
    _, again = run(events, state)  # a redelivery of all three still counts once
    assert again == []


def test_an_alert_about_an_episode_long_past_is_marked_late() -> None:
    events = [incident(0), incident(10), incident(20)]
    _, [prompt] = run(events, now=T0 + timedelta(minutes=21))
    assert not data_of(prompt).late
    _, [late] = run(events, now=T0 + RULES.late_after + timedelta(minutes=21))
    assert data_of(late).late
    assert late.id == prompt.id  # the same episode, whenever it is evaluated


def test_districts_are_independent() -> None:
    _, alerts = run(
        [
            incident(0),
            incident(10, facility="nordvest"),
            incident(20),
            incident(30, facility="amager"),
        ]
    )
    assert alerts == []
    _, alerts = run(
        [
            incident(0, facility="nordvest"),
            incident(10, facility="nordvest"),
            incident(20),
            incident(30),
            incident(40, facility="nordvest"),
        ]
    )
    assert [data_of(a).district for a in alerts] == ["nordvest"]


def test_only_overdose_kinds_count() -> None:
    others = [
        incident(m, kind=k)
        for m, k in (
            (0, IncidentKind.SEIZURE),
            (10, IncidentKind.VIOLENCE),
            (20, IncidentKind.OTHER_MEDICAL),
        )
    ]
    _, alerts = run(others)
    assert alerts == []
    mixed = [
        incident(0, kind=IncidentKind.STIMULANT_OVERAMPING),
        incident(10),
        *others,
        incident(30, kind=IncidentKind.STIMULANT_OVERAMPING),
    ]
    _, alerts = run(mixed)
    assert len(alerts) == 1


def test_restored_state_does_not_raise_known_episodes_again() -> None:
    events = [incident(0), incident(30), incident(60)]
    _, alerts = run(events)
    assert len(alerts) == 1
    restored = AlertState.restore(
        RULES, NOW, [("vesterbro", e.source, e.id, e.time) for e in events], []
    )
    _, again = run([*events, incident(70), incident(-30)], restored)  # redelivery, more, late
    assert again == []


def test_episode_alert_id_is_stable_across_restarts() -> None:
    events = [incident(0), incident(30), incident(60)]
    _, first = run(events)
    _, second = run(events)  # a fresh worker, e.g. after losing its state before persisting
    assert [a.id for a in first] == [a.id for a in second]


def test_threshold_of_one_alerts_on_every_isolated_overdose() -> None:
    rules = AlertRules(threshold=1, window=timedelta(minutes=30))
    state = AlertState()
    raised = 0
    for m in (0, 10, 100):
        step = evaluate(rules, state, incident(m), "vesterbro", NOW)
        state, raised = step.state, raised + len(step.alerts)
    assert raised == 2  # 0 and 10 are one episode, 100 another


# --- adulterants -------------------------------------------------------------------------------


def test_unexpected_substance_raises_an_adulterant_alert() -> None:
    _, alerts = run([drug_check(0, Substance.HEROIN, Substance.HEROIN, Substance.FENTANYL)])
    [alert] = alerts
    data = data_of(alert)
    assert data.reason is AlertReason.ADULTERANT_FOUND
    assert data.substance is Substance.FENTANYL and data.district == "vesterbro"
    assert data.facility_id == "halmtorv" and alert.time == T0
    start, end = data.window() or (None, None)
    cph = ZoneInfo("Europe/Copenhagen")
    assert start == datetime(2026, 11, 28, tzinfo=cph) and end == datetime(2026, 11, 29, tzinfo=cph)


@pytest.mark.parametrize("found", [(Substance.HEROIN,), (Substance.HEROIN, Substance.UNKNOWN)])
def test_expected_findings_raise_nothing(found: tuple[Substance, ...]) -> None:
    _, alerts = run([drug_check(0, Substance.HEROIN, *found)])
    assert alerts == []


def test_one_adulterant_alert_per_district_substance_and_local_day() -> None:
    fentanyl = (Substance.HEROIN, Substance.FENTANYL)
    now = T0 + timedelta(hours=14)
    rules = AlertRules(max_lateness=timedelta(hours=24), zone=RULES.zone)
    _, alerts = run(
        [
            drug_check(0, *fentanyl),
            drug_check(30, *fentanyl, facility="maendenes-hjem"),  # same district, same day
            drug_check(40, *fentanyl, facility="nordvest"),  # another district
            drug_check(50, Substance.COCAINE, Substance.FENTANYL, Substance.AMPHETAMINE),
            # 23:30 UTC on the 28th is 00:30 on the 29th in Copenhagen: a new day
            drug_check(13 * 60 + 30, *fentanyl),
        ],
        now=now,
        rules=rules,
    )
    keys = [(data_of(a).district, data_of(a).substance, data_of(a).episode[-10:]) for a in alerts]
    assert keys == [
        ("vesterbro", Substance.FENTANYL, "2026-11-28"),
        ("nordvest", Substance.FENTANYL, "2026-11-28"),
        ("vesterbro", Substance.AMPHETAMINE, "2026-11-28"),
        ("vesterbro", Substance.FENTANYL, "2026-11-29"),
    ]


def test_adulterant_alerts_survive_a_restart() -> None:
    check = drug_check(0, Substance.HEROIN, Substance.FENTANYL)
    _, [alert] = run([check])
    restored = AlertState.restore(RULES, NOW, [], [("vesterbro", Substance.FENTANYL, alert.time)])
    _, again = run([drug_check(5, Substance.HEROIN, Substance.FENTANYL)], restored)
    assert again == []


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        AlertRules(threshold=0)
    with pytest.raises(ValueError):
        AlertRules(window=timedelta(0))


def test_alerts_resolve_after_the_quiet_period_by_event_time() -> None:
    [alert] = run([incident(0), incident(10), incident(20)])[1]
    data = data_of(alert)
    open_alert = OpenAlert(data.alert_id, "vesterbro", data.reason, data.episode, alert.time)
    quiet = timedelta(hours=2)
    last = {"vesterbro": T0 + timedelta(minutes=50)}  # a later overdose keeps it open
    at_end = T0 + timedelta(minutes=50) + quiet
    assert due_resolutions([open_alert], last, quiet, at_end - timedelta(seconds=1)) == []
    [resolved] = due_resolutions([open_alert], last, quiet, at_end + timedelta(hours=5))
    assert resolved.type == "dk.dcr.alert.resolved" and resolved.time == at_end
    again = due_resolutions([open_alert], last, quiet, at_end)
    assert [e.id for e in again] == [resolved.id]  # the same event whenever evaluated
    assert resolved.data.last_seen == T0 + timedelta(minutes=50)  # type: ignore[union-attr]


def test_every_due_alert_resolves_whatever_the_others_and_without_a_later_overdose() -> None:
    quiet = timedelta(hours=2)
    still_open = OpenAlert("a1", "vesterbro", AlertReason.OVERDOSE_CLUSTER, "e1", T0)
    # no overdose recorded for nordvest (e.g. after a restart): its own time counts
    due = OpenAlert("a2", "nordvest", AlertReason.OVERDOSE_CLUSTER, "e2", T0)
    last = {"vesterbro": T0 + timedelta(hours=1)}
    now = T0 + quiet + timedelta(minutes=30)  # vesterbro's quiet period is not over yet
    [resolved] = due_resolutions([still_open, due], last, quiet, now)
    assert resolved.time == T0 + quiet
    assert resolved.data.district == "nordvest"  # type: ignore[union-attr]
    # the documented id: every instance and version of the evaluator resolves an alert once
    assert resolved.id == uuid5(ALERT_NAMESPACE, "e2/resolved")


def test_an_alert_is_late_only_when_its_episode_began_more_than_late_after_ago() -> None:
    # the cluster's episode starts when the third overdose completes it; a check's at its time
    cluster = [incident(0), incident(30), incident(60)]
    on_time = T0 + timedelta(minutes=60) + RULES.late_after
    [alert] = run(cluster, now=on_time)[1]
    assert data_of(alert).late is False  # exactly late_after: not more than it
    [alert] = run(cluster, now=on_time + timedelta(seconds=1))[1]
    assert data_of(alert).late is True
    check = drug_check(0, Substance.HEROIN, Substance.FENTANYL)
    assert data_of(run([check], now=T0)[1][0]).late is False  # reported at once
    assert data_of(run([check], now=T0 + RULES.late_after)[1][0]).late is False
    late = T0 + RULES.late_after + timedelta(seconds=1)
    assert data_of(run([check], now=late)[1][0]).late is True
