"""Edges of the drug alert rule that a one-line slip would break without any other test noticing
(found by mutation testing, docs/mutation-report.md): the restored window after a restart, the
open lower bound of the counting window, the lateness limit, the adulterant day."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from services.incident.alerting import AlertRules, AlertState, Span, evaluate
from shared.events.vocabulary import Substance
from tests.unit.ingest.test_alerting import NOW, RULES, T0, data_of, drug_check, incident, run


def test_a_late_report_after_a_restart_completes_a_cluster_of_overdoses_stored_before_it() -> None:
    """Two overdoses 6 h 50 min and 6 h 30 min before ``now`` were stored (no alert yet). After a
    restart, a report 5 h 55 min old (within the 6 h lateness) completes the cluster: the
    restored state must still hold the two, although they are older than the lateness limit."""
    now = T0 + timedelta(hours=8)
    first, second = incident(60 + 10), incident(60 + 30)  # 6:50 and 6:30 before now
    _, alerts = run([first, second], now=now - timedelta(hours=5))
    assert alerts == []
    restored = AlertState.restore(
        RULES, now, [("vesterbro", e.source, e.id, e.time) for e in (first, second)], []
    )
    late = incident(60 + 2 * 60 + 5)  # 5:55 before now
    _, alerts = run([late], restored, now=now)
    [alert] = alerts
    assert data_of(alert).overdoses_in_window == 3
    assert data_of(alert).window_end == late.time


def test_the_window_is_open_at_its_lower_bound() -> None:
    """Overdoses at 10:00, 11:00 and two at 12:00 with a 2 h window: at 12:00 the 10:00 one has
    just left the window, so the alert counts 3, not 4."""
    _, alerts = run([incident(0), incident(60), incident(120), incident(120)])
    [alert] = alerts
    data = data_of(alert)
    assert data.window_end == T0 + timedelta(minutes=120)
    assert data.overdoses_in_window == 3


def test_overdoses_exactly_one_window_apart_do_not_count_together() -> None:
    _, alerts = run([incident(0), incident(60), incident(120)])
    assert alerts == []


def test_a_report_exactly_at_the_lateness_limit_still_counts() -> None:
    now = T0 + RULES.max_lateness + timedelta(minutes=30)
    events = [incident(30), incident(40), incident(50)]  # the first exactly max_lateness old
    _, alerts = run(events, now=now)
    assert len(alerts) == 1


def test_restore_forgets_what_no_acceptable_late_report_can_touch() -> None:
    now = NOW + timedelta(days=1)
    old = [incident(m) for m in (0, 10, 20)]  # a full cluster, a day before now
    state = AlertState.restore(RULES, now, [("vesterbro", e.source, e.id, e.time) for e in old], [])
    assert state.districts["vesterbro"].overdoses == ()
    assert state.districts["vesterbro"].episodes == ()
    keep = AlertState.restore(RULES, NOW, [("vesterbro", e.source, e.id, e.time) for e in old], [])
    assert len(keep.districts["vesterbro"].overdoses) == 3
    assert keep.districts["vesterbro"].episodes == (
        Span(T0 + timedelta(minutes=20), T0 + timedelta(minutes=120)),
    )


def test_restore_keeps_adulterant_days_within_the_lateness_only() -> None:
    yesterday = drug_check(-24 * 60, Substance.HEROIN, Substance.FENTANYL)
    state = AlertState.restore(RULES, NOW, [], [("vesterbro", Substance.FENTANYL, yesterday.time)])
    assert state.adulterants == frozenset()
    step = evaluate(
        RULES, state, drug_check(0, Substance.HEROIN, Substance.FENTANYL), "vesterbro", NOW
    )
    assert len(step.alerts) == 1


def test_nonsense_rules_are_refused_with_their_reason() -> None:
    with pytest.raises(ValueError, match=r"^threshold must be at least 1$"):
        AlertRules(threshold=0)
    message = r"^window must be positive and max_lateness not negative$"
    with pytest.raises(ValueError, match=message):
        AlertRules(window=timedelta(0))
    with pytest.raises(ValueError, match=message):
        AlertRules(max_lateness=timedelta(seconds=-1))
    assert AlertRules(max_lateness=timedelta(0)).max_lateness == timedelta(0)


def test_overdoses_at_the_same_instant_all_count() -> None:
    rules = AlertRules(threshold=3, window=timedelta(hours=2), max_lateness=timedelta(hours=6))
    _, alerts = run([incident(0), incident(0), incident(0)], rules=rules)
    [alert] = alerts
    assert data_of(alert).overdoses_in_window == 3
    # ... and they all leave the window together: a fourth two hours later starts afresh
    _, alerts = run([incident(0), incident(0), incident(0), incident(120)], rules=rules)
    assert len(alerts) == 1


def test_a_too_late_report_changes_nothing() -> None:
    state, _ = run([incident(0), incident(10)])
    step = evaluate(RULES, state, incident(-6 * 60 - 1), "vesterbro", NOW)
    assert step.state is state and step.alerts == ()


def test_a_check_with_two_adulterants_raises_the_new_one_even_if_the_first_is_known() -> None:
    state, first = run([drug_check(0, Substance.HEROIN, Substance.BENZODIAZEPINES)])
    assert len(first) == 1
    _, alerts = run(
        [drug_check(5, Substance.HEROIN, Substance.BENZODIAZEPINES, Substance.FENTANYL)], state
    )
    assert [data_of(a).substance for a in alerts] == [Substance.FENTANYL]


def test_episode_keys_do_not_depend_on_the_servers_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, alerts = run([incident(0), incident(10), incident(20)])
    key = data_of(alerts[0]).episode
    assert key.endswith("2026-11-28T10:20:00+00:00")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        _, again = run([incident(0), incident(10), incident(20)])
    finally:
        monkeypatch.undo()
        time.tzset()
    assert data_of(again[0]).episode == key


def test_a_restart_late_in_the_day_remembers_that_days_adulterant_alerts() -> None:
    """23:00 in Copenhagen: today's alert is still within the lateness window, so a repeat
    finding today (after a restart) raises nothing."""
    late_evening = T0.replace(hour=22)  # 23:00 local (CET)
    earlier = late_evening - timedelta(hours=2)
    state = AlertState.restore(
        RULES, late_evening, [], [("vesterbro", Substance.FENTANYL, earlier)]
    )
    check = drug_check(12 * 60 - 30, Substance.HEROIN, Substance.FENTANYL)  # 21:30 UTC
    assert evaluate(RULES, state, check, "vesterbro", late_evening).alerts == ()


def test_overdoses_at_the_same_instant_leave_the_window_together() -> None:
    """Three at 10:00 and one at 11:00: at 12:00 the count falls to 1, so two more at 12:10 and
    12:20 make a new episode (a second alert)."""
    _, alerts = run([incident(0), incident(0), incident(0), incident(60)])
    assert len(alerts) == 1
    _, alerts = run([incident(m) for m in (0, 0, 0, 60, 130, 140)])
    assert [data_of(a).window_end for a in alerts] == [
        T0,
        T0 + timedelta(minutes=140),
    ]
