"""``DCR_ALERTS_*``: the drug alert rule and its consumer (see services.incident.alerting)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    """Durations accept seconds (``7200``) or ISO 8601 (``PT2H``)."""

    model_config = SettingsConfigDict(env_prefix="DCR_ALERTS_")

    #: Overdoses in one district within ``window`` (by event time) that raise an alert.
    threshold: int = Field(default=3, ge=1, le=1000)
    window: timedelta = Field(default=timedelta(hours=2), gt=timedelta(0))
    #: Reports older than this (event time vs. now) no longer raise alerts.
    max_lateness: timedelta = Field(default=timedelta(hours=6), ge=timedelta(0))
    #: An alert about an instant older than this (vs. processing time) is marked ``late``.
    late_after: timedelta = Field(default=timedelta(minutes=15), ge=timedelta(0))
    #: Consumer group of the alert worker (prefixed with DCR_KAFKA_TOPIC_PREFIX).
    consumer_group: str = Field(default="dcr-incident-alerts", pattern=r"^[A-Za-z0-9._-]+$")
    #: Pause before the worker reconnects after Kafka or PostgreSQL failed.
    retry_s: float = Field(default=2.0, gt=0)
    #: ``/healthz`` reports the worker dead when it has neither polled Kafka (leader) nor tried
    #: the leader lock (standby) for this long.
    liveness_s: float = Field(default=30.0, gt=0)
