"""Evidence for the alert rule's boundary mutants listed as equivalent in survivors.toml: each
mutated rule is run side by side with the real one over random incident streams (a 10-minute
grid, so events fall exactly on window and lateness bounds; redeliveries; late reports; restarts
rebuilt from what the store keeps) and the published alerts are compared.

Run: ``.venv/bin/python -m tests.mutation.alerting_equivalence [trials]``; prints, per mutant,
either the first stream that tells it apart (then it is not equivalent: write a test) or that
none did. A search, not a proof: the reasons in survivors.toml give the argument.
"""

from __future__ import annotations

import random
import sys
import types
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from shared.events.envelope import Envelope
from shared.events.payloads import DrugAlertRaised
from shared.events.vocabulary import AlertReason, IncidentKind, Substance
from tests.unit.ingest.test_alerting import FACILITY_DISTRICT, T0, drug_check, incident

SOURCE = (Path(__file__).resolve().parents[2] / "services/incident/alerting.py").read_text()
STEP = timedelta(minutes=10)
MUTANTS = {
    "restore keeps overdoses > instead of >= oldest": (
        "if o.time >= oldest_kept}))",
        "if o.time > oldest_kept}))",
    ),
    "restore keeps episodes ending > instead of >=": (
        "if s.end >= oldest_episode_end)",
        "if s.end > oldest_episode_end)",
    ),
    "a step keeps overdoses > instead of >= oldest": (
        "if o.time >= oldest_kept]",
        "if o.time > oldest_kept]",
    ),
    "a step keeps episodes ending > instead of >=": (
        "if e.end >= now - rules.max_lateness]",
        "if e.end > now - rules.max_lateness]",
    ),
    "changed spans: or instead of and": (
        "if s.end > event.time and s.start < event.time + rules.window",
        "if s.end > event.time or s.start < event.time + rules.window",
    ),
    "changed spans: end >= event time": (
        "if s.end > event.time and s.start < event.time + rules.window",
        "if s.end >= event.time and s.start < event.time + rules.window",
    ),
    "changed spans: start <= event time + window": (
        "if s.end > event.time and s.start < event.time + rules.window",
        "if s.end > event.time and s.start <= event.time + rules.window",
    ),
    "touches: start < other end": (
        "return self.start <= other.end and other.start <= self.end",
        "return self.start < other.end and other.start <= self.end",
    ),
    "touches: other start < end": (
        "return self.start <= other.end and other.start <= self.end",
        "return self.start <= other.end and other.start < self.end",
    ),
}


def _module(name: str, source: str) -> Any:
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def _stream(rng: random.Random) -> list[tuple[int, Envelope]]:
    now, out = 0, []
    for i in range(rng.randint(1, 14)):
        now += rng.randint(0, 6)
        if out and rng.random() < 0.1:
            out.append((now, rng.choice(out)[1]))
            continue
        minutes = (now - rng.randint(0, 50)) * 10
        facility = rng.choice(["halmtorv", "maendenes-hjem", "nordvest"])
        if rng.random() < 0.2:
            found = rng.choice([Substance.FENTANYL, Substance.HEROIN])
            out.append((now, drug_check(minutes, Substance.HEROIN, found, facility=facility)))
        else:
            kind = rng.choice([IncidentKind.OPIOID_OVERDOSE] * 3 + [IncidentKind.SEIZURE])
            out.append((now, incident(minutes, facility, kind, uuid5(UUID(int=0), str(i)))))
    return out


def _published(
    rule: Any, rules: Any, events: list[tuple[int, Envelope]], restarts: set[int]
) -> dict[str, Any]:
    overdoses: list[Any] = []
    alerts: dict[str, Envelope] = {}
    state = rule.AlertState()
    for i, (steps, event) in enumerate(events):
        now = T0 + steps * STEP
        if i in restarts:
            since = now - rules.max_lateness - rules.window
            adulterants = []
            for a in alerts.values():
                data = a.data
                assert isinstance(data, DrugAlertRaised)
                if data.reason is AlertReason.ADULTERANT_FOUND and a.time >= since:
                    adulterants.append((data.district, data.substance, a.time))
            kept = [o for o in overdoses if o[2] >= since]
            state = rule.AlertState.restore(rules, now, kept, adulterants)
        district = FACILITY_DISTRICT[event.facility_id or ""]
        step = rule.evaluate(rules, state, event, district, now)
        if step.state.knows_overdose(district, event.id) and not state.knows_overdose(
            district, event.id
        ):
            overdoses.append((district, event.id, event.time))
        for alert in step.alerts:
            alerts.setdefault(alert.data.episode, alert)
        state = step.state
    return {k: v.model_dump() for k, v in alerts.items()}


def main(argv: list[str]) -> int:
    trials = int(argv[0]) if argv else 4000
    real = _module("alerting_real", SOURCE)
    told_apart = 0
    for what, (old, new) in MUTANTS.items():
        assert SOURCE.count(old) == 1, what
        mutant = _module("alerting_mutant", SOURCE.replace(old, new))
        rng = random.Random(1)
        found = None
        for _ in range(trials):
            window, lateness = (
                timedelta(hours=rng.choice([1, 2])),
                timedelta(hours=rng.choice([1, 3, 6])),
            )
            threshold = rng.choice([1, 2, 3])
            events = _stream(rng)
            restarts = set(rng.sample(range(len(events)), rng.randint(0, min(2, len(events)))))
            a = _published(real, real.AlertRules(threshold, window, lateness), events, restarts)
            b = _published(mutant, mutant.AlertRules(threshold, window, lateness), events, restarts)
            if a != b:
                found = (
                    threshold,
                    window,
                    lateness,
                    restarts,
                    [(s, e.time, e.type) for s, e in events],
                )
                break
        told_apart += found is not None
        verdict = f"TOLD APART by {found!r}" if found else f"no difference in {trials} streams"
        print(f"{what}: {verdict}")
    return 1 if told_apart else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
