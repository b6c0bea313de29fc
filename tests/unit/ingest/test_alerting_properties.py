"""Property: a restart changes no alert. Whatever the incidents, their arrival order, lateness
and redeliveries, the alerts published with restarts at any points equal those published by one
uninterrupted run.

The run is driven as services.incident.alert_worker drives the rule: every newly known overdose
(by CloudEvents source and id) and every alert is stored; a restart rebuilds the state with
``AlertState.restore`` from what the store loads (event time at or after
``now - max_lateness - window``), and the store keeps one alert per episode key (its unique
constraint). Deterministic (derandomized, no database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID, uuid5

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.incident.alerting import AlertState, evaluate
from shared.events.envelope import Envelope
from shared.events.payloads import DrugAlertRaised
from shared.events.vocabulary import AlertReason, IncidentKind, Substance
from tests.unit.ingest.test_alerting import FACILITY_DISTRICT, RULES, T0, drug_check, incident

STEP = timedelta(minutes=10)  # a coarse grid: ties at window and lateness bounds are common
FACILITIES = ("halmtorv", "maendenes-hjem", "nordvest")


@dataclass
class Store:
    """What alert_store keeps: overdoses, and alerts unique per episode (first one wins)."""

    overdoses: list[tuple[str, str, UUID, object]] = field(default_factory=list)
    alerts: dict[str, Envelope] = field(default_factory=dict)

    def load(self, now: object) -> AlertState:
        since = now - RULES.max_lateness - RULES.window  # type: ignore[operator]
        adulterants = []
        for a in self.alerts.values():
            data = a.data
            assert isinstance(data, DrugAlertRaised)
            if data.reason is AlertReason.ADULTERANT_FOUND and a.time >= since:
                assert data.substance is not None
                adulterants.append((data.district, data.substance, a.time))
        kept = [o for o in self.overdoses if o[3] >= since]  # type: ignore[operator]
        return AlertState.restore(RULES, now, kept, adulterants)  # type: ignore[arg-type]


@st.composite
def arrivals(draw: st.DrawFn) -> list[tuple[int, Envelope]]:
    """(processing time in grid steps from T0, event) in arrival order; ``now`` never goes back."""
    now = 0
    out: list[tuple[int, Envelope]] = []
    for _ in range(draw(st.integers(1, 25))):
        now += draw(st.integers(0, 6))
        if out and draw(st.integers(0, 9)) == 0:
            out.append((now, draw(st.sampled_from(out))[1]))  # a redelivery
            continue
        lag = draw(st.integers(0, 44))  # up to 7 h 20 min late (lateness limit: 6 h)
        minutes = (now - lag) * 10
        facility = draw(st.sampled_from(FACILITIES))
        if draw(st.integers(0, 4)) == 0:
            found = draw(st.sampled_from([Substance.FENTANYL, Substance.HEROIN]))
            event = drug_check(minutes, Substance.HEROIN, found, facility=facility)
        else:
            kind = draw(st.sampled_from([IncidentKind.OPIOID_OVERDOSE, IncidentKind.SEIZURE]))
            event = incident(minutes, facility, kind, event_id=uuid5(UUID(int=0), str(len(out))))
        out.append((now, event))
    return out


def publish(events: list[tuple[int, Envelope]], restarts: set[int]) -> dict[str, Envelope]:
    store = Store()
    state = AlertState()
    for i, (steps, event) in enumerate(events):
        now = T0 + steps * STEP
        if i in restarts:
            state = store.load(now)
        assert event.facility_id is not None
        district = FACILITY_DISTRICT[event.facility_id]
        step = evaluate(RULES, state, event, district, now)
        key = (district, event.source, event.id)
        if step.state.knows_overdose(*key) and not state.knows_overdose(*key):
            store.overdoses.append((district, event.source, event.id, event.time))
        for alert in step.alerts:
            assert isinstance(alert.data, DrugAlertRaised)
            store.alerts.setdefault(alert.data.episode, alert)
        state = step.state
    return store.alerts


@settings(
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(events=arrivals(), data=st.data())
def test_alerts_with_restarts_equal_alerts_without(
    events: list[tuple[int, Envelope]], data: st.DataObject
) -> None:
    restarts = data.draw(st.sets(st.integers(0, len(events) - 1), min_size=1, max_size=3))
    assert publish(events, restarts) == publish(events, set())
