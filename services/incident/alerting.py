"""The drug alert rule: a pure function ``(state, incident event) -> (state, alerts)``.

No I/O here (the Kafka/PostgreSQL driver is :mod:`services.incident.alert_worker`); ``now`` is an
argument, so the rule is deterministic and unit-tested without clocks.

Overdose clusters (reason ``overdose_cluster``)
    ``c_d(x)`` is the number of overdoses (:data:`~shared.events.vocabulary.OVERDOSE_KINDS`) in
    district ``d`` with event time in ``(x - window, x]``. An **episode** is a maximal interval of
    event time on which ``c_d(x) >= threshold``; each episode raises exactly one alert. Adding an
    overdose only ever grows ``c_d``, so an episode only ever grows or merges with a neighbour:
    a late report that moves an episode's start earlier, or bridges two episodes, raises nothing
    new. A new episode (a second alert) starts only after ``c_d`` fell below the threshold.
    The alert's episode key is ``overdose_cluster/<district>/<start>``, ``start`` being the
    instant the threshold was reached as known when the alert was raised.

Adulterants (reason ``adulterant_found``)
    A drug check whose ``found`` holds a substance other than the ``expected`` one (and other
    than ``unknown``) raises one alert per district, substance and **local calendar day** (the
    city's time zone): episode key ``adulterant_found/<district>/<substance>/<YYYY-MM-DD>``.
    Calendar days make the key independent of arrival order, so a restarted worker (or the
    database's unique constraint on the key) recognises a repeat without any window state; the
    price is that a finding just after midnight raises the next day's alert again.

Lateness and memory (the late-report rule)
    Every report is evaluated by its **event time**, never by when it arrived. A report whose
    event time is at or after ``now - max_lateness`` (``now`` = processing time, default 6 h)
    takes part fully: it can complete a cluster and raise an alert even though it came late.
    Such an alert is **marked late** (``late = true``) when the instant it describes (the
    episode's start, or the drug check's time) is more than ``late_after`` (default 15 min)
    before ``now``: the people told learn it is not news of the last minutes. A report older
    than ``now - max_lateness`` is **too late to matter**: it raises nothing and is not kept,
    and :attr:`Step.too_late` says so, so that the driver counts it in a metric (nothing is
    ignored silently; replaying an old topic raises no alerts for old history).
    The state keeps overdoses no older than ``now - max_lateness - window`` and episodes ending
    no earlier than ``now - max_lateness``: exactly what an acceptable late event can still
    interact with. Within that horizon, counts are exact.

Corrections (``dk.dcr.report.voided``, :func:`void`)
    A room may void one of its own reports (same CloudEvents source, the report's id). A voided
    report never counts: a void that arrives first is remembered (:attr:`AlertState.voided`)
    and the report, when it comes, changes nothing (:attr:`Step.voided`); a void that arrives
    after the report removes it from the district's overdoses, so every later evaluation is as
    if it had never been reported. An alert about an instant within ``max_lateness`` of now
    **stands** while the remaining overdoses still reach the threshold at some instant of
    ``[start, start + window)`` (``start`` = the alert's time, the instant its episode reached
    the threshold): only the overdoses in ``(start - window, start + window)`` decide, so a void
    elsewhere never touches it. An alert that no longer stands is **withdrawn**
    (``dk.dcr.alert.withdrawn``, once per alert, whatever its lifecycle state); one that stands
    is left alone and nothing is sent. If removing the report splits a cluster so that a part
    still at the threshold is covered by no standing alert, that part raises its own alert, the
    one it would have raised had the report never been made. An alert about an instant older
    than ``max_lateness`` is never withdrawn (its evidence may be older than the state keeps).
    Withdrawn is final: if reports later bring the cluster back at the same start, that is a
    new alert (episode key with a suffix ``/2``, ``/3``..., :attr:`AlertState.withdrawn`).

Idempotency
    Events are identified by CloudEvents ``(source, id)``, never by ``id`` alone: two
    facilities may choose the same client event id, and both overdoses count. A redelivered
    event (same source and id) changes nothing. Alert event ids are
    ``uuid5(ALERT_NAMESPACE, episode key)``: publishing the same episode twice gives the same
    CloudEvents id, which consumers deduplicate.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import NamedTuple
from uuid import UUID, uuid5

from shared.events.envelope import Envelope, district_source
from shared.events.payloads import (
    DrugAlertRaised,
    DrugAlertResolved,
    DrugAlertWithdrawn,
    DrugCheckResult,
    IncidentReported,
    ReportVoided,
)
from shared.events.vocabulary import OVERDOSE_KINDS, AlertReason, Substance

#: Namespace of alert event ids (uuid5 of the episode key).
ALERT_NAMESPACE = UUID("6f1c0c1e-5d7a-4a43-9a43-0d5c2d1b7a10")


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Parameters of the rule. ``zone`` is the city's time zone (adulterant days)."""

    threshold: int = 3
    window: timedelta = timedelta(hours=2)
    max_lateness: timedelta = timedelta(hours=6)
    zone: tzinfo = UTC
    #: An alert about an instant older than this (vs. now) is marked ``late``.
    late_after: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if self.window <= timedelta(0) or self.max_lateness < timedelta(0):
            raise ValueError("window must be positive and max_lateness not negative")

    def day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()


@dataclass(frozen=True, slots=True, order=True)
class Overdose:
    time: datetime
    source: str
    event_id: UUID


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open event-time interval ``[start, end)``."""

    start: datetime
    end: datetime

    def touches(self, other: Span) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True, slots=True)
class DistrictWindow:
    """One district's recent overdoses (sorted) and the episodes already alerted (disjoint)."""

    overdoses: tuple[Overdose, ...] = ()
    episodes: tuple[Span, ...] = ()

    def knows(self, source: str, event_id: UUID) -> bool:
        return any(o.event_id == event_id and o.source == source for o in self.overdoses)


@dataclass(frozen=True, slots=True, order=True)
class AdulterantKey:
    district: str
    substance: Substance
    day: date


@dataclass(frozen=True, slots=True)
class AlertState:
    """Immutable; every step returns a new one. ``districts`` must not be mutated."""

    districts: Mapping[str, DistrictWindow] = field(default_factory=dict)
    adulterants: frozenset[AdulterantKey] = frozenset()
    #: Voided reports ``(source, id)`` -> the void's event time (a report arriving after its
    #: void is not counted). Kept while the void is no older than the overdoses kept.
    voided: Mapping[tuple[str, UUID], datetime] = field(default_factory=dict)
    #: Episode keys of withdrawn alerts: a cluster at the same start raised again (the
    #: reports came back) gets the key with a suffix ``/2``, ``/3``... so it is a new alert.
    withdrawn: frozenset[str] = frozenset()

    def knows_overdose(self, district: str, source: str, event_id: UUID) -> bool:
        w = self.districts.get(district)
        return w is not None and w.knows(source, event_id)

    @classmethod
    def restore(
        cls,
        rules: AlertRules,
        now: datetime,
        overdoses: Iterable[tuple[str, str, UUID, datetime]],
        adulterants: Iterable[tuple[str, Substance, datetime]],
        voided: Iterable[tuple[str, UUID, datetime]] = (),
        withdrawn: Iterable[str] = (),
    ) -> AlertState:
        """Rebuild the state from persisted overdoses ``(district, source, event id, time)``,
        raised adulterant alerts ``(district, substance, time)``, voids ``(source, target
        id, void time)`` and the episode keys of withdrawn alerts. The overdoses must not
        include voided ones (the driver deletes an overdose in the transaction that stores its
        void).

        Every episode the overdoses form counts as already alerted: the driver persists an
        overdose in the same transaction as the alerts it raised, so none was left un-alerted.
        """
        by_district: dict[str, list[Overdose]] = {}
        for district, source, event_id, at in overdoses:
            by_district.setdefault(district, []).append(Overdose(at, source, event_id))
        oldest_kept = now - rules.max_lateness - rules.window
        oldest_episode_end = now - rules.max_lateness
        districts: dict[str, DistrictWindow] = {}
        for district, items in by_district.items():
            kept = tuple(sorted({o for o in items if o.time >= oldest_kept}))
            spans = _spans([o.time for o in kept], rules)
            districts[district] = DistrictWindow(
                kept, tuple(s for s in spans if s.end >= oldest_episode_end)
            )
        first_day = rules.day(now - rules.max_lateness)
        keys = frozenset(
            k
            for d, s, at in adulterants
            if (k := AdulterantKey(d, s, rules.day(at))).day >= first_day
        )
        voids = {(src, target): at for src, target, at in voided if at >= oldest_kept}
        return cls(districts, keys, voids, frozenset(withdrawn))


class Step(NamedTuple):
    state: AlertState
    alerts: tuple[Envelope, ...]
    #: The event is older than ``now - max_lateness``: it changed nothing (count it).
    too_late: bool = False
    #: The event was voided before it arrived: it changed nothing (count it).
    voided: bool = False


def evaluate(
    rules: AlertRules, state: AlertState, event: Envelope, district: str, now: datetime
) -> Step:
    """Apply one incident event (at a facility in ``district``); return the new state and the
    alerts to raise (``dk.dcr.alert.raised`` envelopes). Other event types change nothing."""
    if (event.source, event.id) in state.voided:
        return Step(state, (), voided=True)
    if event.time < now - rules.max_lateness:
        return Step(state, (), too_late=True)
    if isinstance(event.data, IncidentReported) and event.data.kind in OVERDOSE_KINDS:
        return _overdose(rules, state, event, district, now)
    if isinstance(event.data, DrugCheckResult) and event.data.unexpected:
        return _drug_check(rules, state, event, event.data, district, now)
    return Step(state, ())


def _overdose(
    rules: AlertRules, state: AlertState, event: Envelope, district: str, now: datetime
) -> Step:
    window = state.districts.get(district, DistrictWindow())
    if window.knows(event.source, event.id):
        return Step(state, ())
    oldest_kept = now - rules.max_lateness - rules.window
    overdoses = [o for o in window.overdoses if o.time >= oldest_kept]
    bisect.insort(overdoses, Overdose(event.time, event.source, event.id))
    episodes = [e for e in window.episodes if e.end >= now - rules.max_lateness]
    times = [o.time for o in overdoses]
    # Only spans containing an instant in [t, t + window) can have changed.
    changed = [
        s
        for s in _spans(times, rules)
        if s.end > event.time and s.start < event.time + rules.window
    ]
    alerts: list[Envelope] = []
    for span in changed:
        known = [e for e in episodes if e.touches(span)]
        if known:
            episodes = [e for e in episodes if e not in known]
            episodes.append(
                Span(
                    min(span.start, *(e.start for e in known)),
                    max(span.end, *(e.end for e in known)),
                )
            )
        else:
            episodes.append(span)
            alerts.append(
                _cluster_alert(rules, district, span.start, times, event, now, state.withdrawn)
            )
    new_window = DistrictWindow(tuple(overdoses), tuple(sorted(episodes, key=lambda e: e.start)))
    return Step(replace(state, districts={**state.districts, district: new_window}), tuple(alerts))


def _spans(times: list[datetime], rules: AlertRules) -> list[Span]:
    """Maximal intervals on which the sliding count reaches the threshold (``times`` sorted).

    An overdose at ``t`` counts on ``[t, t + window)``; changes at one instant apply together.
    """
    changes: dict[datetime, int] = {}
    for t in times:
        changes[t] = changes.get(t, 0) + 1
        changes[t + rules.window] = changes.get(t + rules.window, 0) - 1
    spans: list[Span] = []
    count, start = 0, None
    for instant in sorted(changes):
        count += changes[instant]
        if count >= rules.threshold and start is None:
            start = instant
        elif count < rules.threshold and start is not None:
            spans.append(Span(start, instant))
            start = None
    assert start is None  # every overdose's count ends
    return spans


def _cluster_alert(
    rules: AlertRules,
    district: str,
    start: datetime,
    times: list[datetime],
    trigger: Envelope,
    now: datetime,
    withdrawn: frozenset[str],
) -> Envelope:
    in_window = sum(1 for t in times if start - rules.window < t <= start)
    first = f"{AlertReason.OVERDOSE_CLUSTER}/{district}/{start.astimezone(UTC).isoformat()}"
    episode, n = first, 1
    while episode in withdrawn:  # the same start as a withdrawn alert: a new alert
        n += 1
        episode = f"{first}/{n}"
    return _alert(
        episode,
        start,
        district=district,
        reason=AlertReason.OVERDOSE_CLUSTER,
        overdoses_in_window=in_window,
        window_start=start - rules.window,
        window_end=start,
        facility_id=trigger.facility_id,
        late=start < now - rules.late_after,
    )


def _drug_check(
    rules: AlertRules,
    state: AlertState,
    event: Envelope,
    check: DrugCheckResult,
    district: str,
    now: datetime,
) -> Step:
    day = rules.day(event.time)
    first_day = rules.day(now - rules.max_lateness)
    keys = {k for k in state.adulterants if k.day >= first_day}
    alerts: list[Envelope] = []
    for substance in sorted(check.unexpected):
        key = AdulterantKey(district, substance, day)
        if key in keys:
            continue
        keys.add(key)
        episode = f"{AlertReason.ADULTERANT_FOUND}/{district}/{substance}/{day.isoformat()}"
        day_start = datetime.combine(day, time(0), tzinfo=rules.zone)
        day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=rules.zone)
        alerts.append(
            _alert(
                episode,
                event.time,
                district=district,
                reason=AlertReason.ADULTERANT_FOUND,
                substance=substance,
                window_start=day_start,
                window_end=day_end,
                facility_id=event.facility_id,
                late=event.time < now - rules.late_after,
            )
        )
    return Step(replace(state, adulterants=frozenset(keys)), tuple(alerts))


def _alert(
    episode: str,
    at: datetime,
    *,
    district: str,
    reason: AlertReason,
    substance: Substance | None = None,
    overdoses_in_window: int | None = None,
    window_start: datetime,
    window_end: datetime,
    facility_id: str | None,
    late: bool,
) -> Envelope:
    """The alert envelope; its id (and ``alert_id``) is derived from the episode key."""
    event_id = uuid5(ALERT_NAMESPACE, episode)
    data = DrugAlertRaised(
        alert_id=event_id.hex,
        district=district,
        reason=reason,
        episode=episode,
        substance=substance,
        overdoses_in_window=overdoses_in_window,
        window_start=window_start,
        window_end=window_end,
        facility_id=facility_id,
        late=late,
    )
    return Envelope.wrap(data, id=event_id, source=district_source(district), time=at)


# --- corrections ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """An overdose-cluster alert raised and not withdrawn (any other lifecycle state), as
    stored by the driver: what a void is checked against."""

    alert_id: str
    district: str
    episode: str
    start: datetime  # the alert event's time: the instant its episode reached the threshold


class VoidStep(NamedTuple):
    state: AlertState
    #: ``dk.dcr.alert.withdrawn`` of the alerts the void took the basis from.
    withdrawn: tuple[Envelope, ...] = ()
    #: ``dk.dcr.alert.raised`` of a cluster part no standing alert covers any more.
    alerts: tuple[Envelope, ...] = ()


def void(
    rules: AlertRules,
    state: AlertState,
    event: Envelope,
    district: str,
    raised: Iterable[RaisedAlert],
    now: datetime,
) -> VoidStep:
    """Apply one ``dk.dcr.report.voided`` of a facility in ``district`` (see "Corrections" in
    the module docstring). ``raised``: the district's overdose-cluster alerts not withdrawn,
    at least those about instants at or after ``now - max_lateness - 2 * window``."""
    data = event.data
    if not isinstance(data, ReportVoided):
        raise TypeError(f"not a void: {event.type}")
    key = (event.source, data.target_id)
    oldest_kept = now - rules.max_lateness - rules.window
    voids = {k: at for k, at in state.voided.items() if at >= oldest_kept}
    state = replace(state, voided={**voids, key: max(event.time, voids.get(key, event.time))})
    window = state.districts.get(district)
    target = (
        next((o for o in window.overdoses if (o.source, o.event_id) == key), None)
        if window
        else None
    )
    if window is None or target is None:
        return VoidStep(state)
    overdoses = tuple(o for o in window.overdoses if o != target and o.time >= oldest_kept)
    times = [o.time for o in overdoses]
    spans = [s for s in _spans(times, rules) if s.end >= now - rules.max_lateness]
    state = replace(
        state, districts={**state.districts, district: DistrictWindow(overdoses, tuple(spans))}
    )
    if target.time < now - rules.max_lateness:
        return VoidStep(state)  # too late to change an alert: only later counts change
    alerts = [a for a in raised if a.district == district]
    lost = [
        a
        for a in alerts
        if a.start >= now - rules.max_lateness
        and abs(a.start - target.time) < rules.window
        and not any(_covers(rules, a, s) for s in spans)
    ]
    standing = [a for a in alerts if a not in lost]
    state = replace(state, withdrawn=state.withdrawn | {a.episode for a in lost})
    changed = [s for s in spans if s.end > target.time and s.start < target.time + rules.window]
    new_alerts = tuple(
        _cluster_alert(rules, district, s.start, times, event, now, state.withdrawn)
        for s in changed
        if not any(_covers(rules, a, s) for a in standing)
    )
    withdrawn = tuple(_withdrawal(rules, a, times, now) for a in lost)
    return VoidStep(state, withdrawn, new_alerts)


def _covers(rules: AlertRules, alert: RaisedAlert, span: Span) -> bool:
    """Whether ``span`` (threshold reached) meets ``[alert.start, alert.start + window)``."""
    return span.start < alert.start + rules.window and span.end > alert.start


def _withdrawal(
    rules: AlertRules, alert: RaisedAlert, times: list[datetime], now: datetime
) -> Envelope:
    remaining = sum(1 for t in times if alert.start - rules.window < t <= alert.start)
    data = DrugAlertWithdrawn(
        alert_id=alert.alert_id,
        district=alert.district,
        reason=AlertReason.OVERDOSE_CLUSTER,
        episode=alert.episode,
        since=alert.start,
        overdoses_remaining=remaining,
        threshold=rules.threshold,
    )
    return Envelope.wrap(
        data,
        id=uuid5(ALERT_NAMESPACE, alert.episode + "/withdrawn"),
        source=district_source(alert.district),
        time=now,
    )


# --- resolution -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """A raised, unresolved alert as stored by the driver."""

    alert_id: str
    district: str
    reason: AlertReason
    episode: str
    at: datetime  # the alert event's time (episode start / drug check time)


def due_resolutions(
    open_alerts: Iterable[OpenAlert],
    last_overdose: Mapping[str, datetime],
    quiet: timedelta,
    now: datetime,
) -> list[Envelope]:
    """``dk.dcr.alert.resolved`` events for the alerts whose episode has ended.

    Rule (by event time): an overdose cluster alert ends once no overdose in its district
    happened for ``quiet`` after the last one (``last_overdose[district]``, or the alert's own
    time if later); an adulterant alert ends ``quiet`` after the finding. The resolved event's
    time is that end (``last seen + quiet``), so it is the same whenever it is evaluated, and
    its id is ``uuid5(ALERT_NAMESPACE, episode + "/resolved")``: once per alert.
    """
    out = []
    for a in open_alerts:
        last = a.at
        if a.reason is AlertReason.OVERDOSE_CLUSTER:
            last = max(last, last_overdose.get(a.district, last))
        if now - last < quiet:
            continue
        data = DrugAlertResolved(
            alert_id=a.alert_id,
            district=a.district,
            reason=a.reason,
            episode=a.episode,
            last_seen=last,
            quiet_period_s=int(quiet.total_seconds()),
        )
        out.append(
            Envelope.wrap(
                data,
                id=uuid5(ALERT_NAMESPACE, a.episode + "/resolved"),
                source=district_source(a.district),
                time=last + quiet,
            )
        )
    return out
