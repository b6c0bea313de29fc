"""What a drug alert notification says, and how a webhook is signed. Pure: no I/O.

A message tells a person what they need to act: the district and its rooms, what was seen (an
overdose cluster, or an adulterant found by drug checking and which substance), since when, what
to do, and a link to the dashboard. It is built from the alert event only, which holds no client
code, pseudonym or visit id, so no message can carry one.

Webhook signature (for a facility's own system or a chat bridge)::

    X-DCR-Timestamp: <unix seconds>
    X-DCR-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
    X-DCR-Delivery:  <delivery id>   (the same on every retry: deduplicate on it)

A receiver recomputes the HMAC over the timestamp, a dot and the raw body bytes with the shared
secret, compares in constant time, and rejects timestamps more than 5 minutes from its clock
(replays): :func:`verify` is the reference implementation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from shared.city import City
from shared.events.envelope import Envelope
from shared.events.payloads import (
    DrugAlertAcknowledged,
    DrugAlertRaised,
    DrugAlertResolved,
    DrugAlertWithdrawn,
)
from shared.events.vocabulary import AlertReason

#: Namespace of delivery ids (uuid5 of "<event id>/<recipient>/<channel>").
DELIVERY_NAMESPACE = UUID("0b7f5d1e-7c55-4c4e-9a53-2f1f6f3f0a11")
#: A signed webhook older or newer than this is refused by :func:`verify`.
SIGNATURE_TOLERANCE = timedelta(minutes=5)

ALERT_TYPES = frozenset(
    {
        "dk.dcr.alert.raised",
        "dk.dcr.alert.acknowledged",
        "dk.dcr.alert.resolved",
        "dk.dcr.alert.withdrawn",
    }
)

_TO_DO = {
    AlertReason.OVERDOSE_CLUSTER: (
        "Warn clients in the district's rooms and on the street that overdoses are clustering; "
        "have naloxone and oxygen ready at every booth; increase supervision and shorten "
        "check intervals; outreach: tell people using alone."
    ),
    AlertReason.ADULTERANT_FOUND: (
        "Warn clients that {substance} was found in drugs sold as something else; offer drug "
        "checking; have naloxone ready (fentanyl and nitazenes need more doses); outreach: "
        "pass the warning on."
    ),
}


WITHDRAWN_TO_DO = (
    "Stand down the measures taken for this alert only, unless staff see other signs of "
    "dangerous drugs; tell the rooms and outreach who passed the warning on that it was "
    "withdrawn. Other alerts are not affected. Runbook: DrugAlertOpen (withdrawn alerts)."
)


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    #: The webhook's JSON body (the same facts, machine-readable).
    body: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "text": self.text, "body": self.body}


def delivery_id(event_id: UUID, recipient: str, channel: str) -> UUID:
    return uuid5(DELIVERY_NAMESPACE, f"{event_id}/{recipient}/{channel}")


def _local(at: datetime, city: City) -> str:
    return at.astimezone(city.zone).strftime("%Y-%m-%d %H:%M %Z")


def render(env: Envelope, city: City, dashboard_url: str) -> Message:
    """The notification for an alert event (raised, acknowledged, resolved or withdrawn)."""
    data = env.data
    if not isinstance(
        data, DrugAlertRaised | DrugAlertAcknowledged | DrugAlertResolved | DrugAlertWithdrawn
    ):
        raise TypeError(f"not an alert event: {env.type}")
    district = city.district_by_id.get(data.district)
    district_name = district.name if district else data.district
    rooms = [f.name for f in city.facilities if f.district == data.district]
    link = f"{dashboard_url}?var-district={data.district}"
    body: dict[str, Any] = {
        "type": env.type,
        "alert_id": data.alert_id,
        "district": data.district,
        "district_name": district_name,
        "rooms": rooms,
        "time": env.time.isoformat(),
        "dashboard": link,
    }
    lines: list[str]
    if isinstance(data, DrugAlertRaised):
        if data.reason is AlertReason.OVERDOSE_CLUSTER:
            what = f"Overdose cluster: {data.overdoses_in_window} overdoses in {district_name}"
            if data.window_start and data.window_end:
                hours = (data.window_end - data.window_start).total_seconds() / 3600
                what += f" within {hours:g} h"
        else:
            substance = data.substance.value if data.substance else "an unexpected substance"
            what = f"Adulterant found by drug checking in {district_name}: {substance}"
        subject = f"[DCR drug alert] {what}"
        to_do = _TO_DO[data.reason].format(substance=data.substance or "it")
        lines = [
            f"DRUG ALERT - {district_name}",
            "",
            f"What was seen: {what}.",
            f"Since: {_local(env.time, city)}"
            + (" (raised from late reports: this began a while ago)" if data.late else ""),
            f"Rooms in the district: {', '.join(rooms) or '-'}",
            "",
            f"What to do: {to_do}",
            "",
            f"Dashboard: {link}",
            f"Alert id: {data.alert_id} (ops acknowledge it: POST /v1/alerts/{data.alert_id}/ack)",
        ]
        body |= {
            "reason": data.reason.value,
            "substance": data.substance.value if data.substance else None,
            "overdoses_in_window": data.overdoses_in_window,
            "late": data.late,
            "what_to_do": to_do,
        }
    elif isinstance(data, DrugAlertAcknowledged):
        subject = f"[DCR drug alert] Acknowledged: {district_name} ({data.alert_id[:8]})"
        lines = [
            f"The drug alert {data.alert_id} in {district_name} was acknowledged by "
            f"{data.acknowledged_by} at {_local(env.time, city)}: someone has taken charge.",
            "",
            f"Dashboard: {link}",
        ]
        body |= {"acknowledged_by": data.acknowledged_by}
    elif isinstance(data, DrugAlertWithdrawn):
        subject = (
            f"[DCR drug alert] Withdrawn: a report was corrected - {district_name} "
            f"({data.alert_id[:8]})"
        )
        lines = [
            f"The drug alert {data.alert_id} in {district_name} ({data.reason.value}, since "
            f"{_local(data.since, city)}) is withdrawn: a report was corrected.",
            "",
            f"A room voided one of the reports it counted; {data.overdoses_remaining} remain in "
            f"its window, fewer than the {data.threshold} an alert needs.",
            f"What to do: {WITHDRAWN_TO_DO}",
            "",
            f"Dashboard: {link}",
        ]
        body |= {
            "reason": data.reason.value,
            "since": data.since.isoformat(),
            "overdoses_remaining": data.overdoses_remaining,
            "threshold": data.threshold,
            "what_to_do": WITHDRAWN_TO_DO,
        }
    else:
        quiet_h = data.quiet_period_s / 3600
        subject = f"[DCR drug alert] Resolved: {district_name} ({data.alert_id[:8]})"
        lines = [
            f"The drug alert {data.alert_id} in {district_name} ({data.reason.value}) is "
            f"resolved: nothing qualifying was reported for {quiet_h:g} h after "
            f"{_local(data.last_seen, city)}.",
            "Keep the usual precautions.",
            "",
            f"Dashboard: {link}",
        ]
        body |= {"reason": data.reason.value, "last_seen": data.last_seen.isoformat()}
    return Message(subject, "\n".join(lines) + "\n", body)


def body_bytes(message: Message) -> bytes:
    """The exact bytes posted (and signed): compact, key-sorted JSON."""
    return json.dumps(message.body, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, now: datetime) -> bool:
    """What a receiver does: a valid signature over a timestamp within the tolerance."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - ts) > SIGNATURE_TOLERANCE.total_seconds():
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)
