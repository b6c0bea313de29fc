"""``DCR_ALERTS_*``: the drug alert rule and its consumer (see services.incident.alerting);
``DCR_NOTIFY_*``: the notifier."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import DEV_SECRET, Environment, refuse_public_signing_secret


class AlertSettings(BaseSettings):
    """Durations accept seconds (``7200``) or ISO 8601 (``PT2H``)."""

    model_config = SettingsConfigDict(env_prefix="DCR_ALERTS_")

    #: Overdoses in one district within ``window`` (by event time) that raise an alert.
    threshold: int = Field(default=3, ge=1, le=1000)
    window: timedelta = Field(default=timedelta(hours=2), gt=timedelta(0))
    #: Reports older than this (event time vs. now) no longer raise alerts.
    max_lateness: timedelta = Field(default=timedelta(hours=6), ge=timedelta(0))
    #: An alert is resolved when its district had no qualifying overdose (event time) for this
    #: long (adulterant alerts: this long after the finding).
    quiet_period: timedelta = Field(default=timedelta(hours=2), gt=timedelta(0))
    #: An alert about an instant older than this (vs. processing time) is marked ``late``.
    late_after: timedelta = Field(default=timedelta(minutes=15), ge=timedelta(0))
    #: Consumer group of the alert worker (prefixed with DCR_KAFKA_TOPIC_PREFIX).
    consumer_group: str = Field(default="dcr-incident-alerts", pattern=r"^[A-Za-z0-9._-]+$")
    #: Pause before the worker reconnects after Kafka or PostgreSQL failed.
    retry_s: float = Field(default=2.0, gt=0)
    #: ``/healthz`` reports the worker dead when it has neither polled Kafka (leader) nor tried
    #: the leader lock (standby) for this long.
    liveness_s: float = Field(default=30.0, gt=0)


class NotifySettings(BaseSettings):
    """``DCR_NOTIFY_*``: the notifier (services.incident.notifier) and its channels.

    Invariant: in prod (the default when DCR_ENV is unset) the notifier refuses to start with
    the development webhook secret or one shorter than 32 characters (receivers could not trust
    a signature)."""

    model_config = SettingsConfigDict(env_prefix="DCR_NOTIFY_")

    #: Unset means ``prod`` (nothing fails open by default); ``make up`` sets ``dev`` explicitly.
    env: Environment = Field(default=Environment.PROD, validation_alias="DCR_ENV")
    #: Run the notifier in this incident instance (every instance may: the log deduplicates).
    enabled: bool = True
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_from: str = "drug-alerts@dcr.example"
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    webhook_secret: SecretStr = SecretStr(DEV_SECRET)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    #: Linked from every message (the alerts dashboard; ``?var-district=`` is appended).
    dashboard_url: str = "http://127.0.0.1:3000/d/dcr-district"
    consumer_group: str = Field(default="dcr-notifier", pattern=r"^[A-Za-z0-9._-]+$")
    #: A delivery is retried after backoff_s * 2^(attempt-1) (at most backoff_max_s) and is
    #: dead after max_attempts failures.
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=900.0, gt=0)
    #: A claimed delivery whose sender died is retried after this long.
    lease_s: float = Field(default=60.0, gt=0)
    #: How often the delivery loop looks for due deliveries.
    poll_s: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> NotifySettings:
        refuse_public_signing_secret(
            "DCR_NOTIFY_WEBHOOK_SECRET", self.webhook_secret.get_secret_value(), self.env
        )
        return self
