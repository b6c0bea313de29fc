"""Typed settings shared by every service (pydantic-settings, one env prefix per concern).

Defaults are the local development values used by ``make up``; production overrides them through
the environment. Secrets have no usable default outside ``DCR_ENV=dev``/``test`` (see
:class:`SecuritySettings`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The development secret. Accepted only when DCR_ENV is dev or test.
DEV_SECRET = "dev-only-insecure-secret-change-me"  # noqa: S105


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class KafkaSettings(BaseSettings):
    """``DCR_KAFKA_*``: where the broker is and how topics are laid out."""

    model_config = SettingsConfigDict(env_prefix="DCR_KAFKA_")

    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(default=6, ge=1)
    #: Copies of every partition: 1 on the single development node, 3 on the cluster
    #: (``make up KAFKA_NODES=3``). min.insync.replicas follows (see shared.kafka.admin).
    replication_factor: int = Field(default=1, ge=1)
    #: How long a publish may take before the service answers 503.
    publish_timeout_s: float = Field(default=5.0, gt=0)
    #: Prepended to every topic name (isolates test runs sharing one broker). Empty in production.
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")

    def topic(self, name: str) -> str:
        """The physical topic name of catalogue topic ``name``."""
        return self.topic_prefix + name

    def bootstrap_list(self) -> list[str]:
        """``bootstrap_servers`` split at commas (a cluster: ``host:port,host:port,...``).
        aiokafka splits a string itself; FastStream's KafkaBroker does not, so it gets this."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


class DatabaseSettings(BaseSettings):
    """``DCR_DB_*``: the PostgreSQL database holding read models and service state."""

    model_config = SettingsConfigDict(env_prefix="DCR_DB_")

    #: Loopback default without TLS (the local cluster; encryption there costs ~30% of ingest
    #: throughput for nothing). Production sets its own DSN, with TLS.
    dsn: SecretStr = SecretStr("postgresql://dcr:dcr@127.0.0.1:5432/dcr?sslmode=disable")
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=10, ge=1)


class CitySettings(BaseSettings):
    """``DCR_CITY_*``: the city's districts and facilities, and its time zone."""

    model_config = SettingsConfigDict(env_prefix="DCR_CITY_")

    file: Path = REPO_ROOT / "deploy" / "city.yaml"


class SecuritySettings(BaseSettings):
    """``DCR_*``: environment and secrets.

    Invariant: outside dev/test the service refuses to start with the development secret or with a
    secret shorter than 32 characters.
    """

    model_config = SettingsConfigDict(env_prefix="DCR_")

    env: Environment = Environment.DEV
    pseudonym_secret: SecretStr = SecretStr(DEV_SECRET)

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> SecuritySettings:
        if self.env is Environment.PROD:
            secret = self.pseudonym_secret.get_secret_value()
            if secret == DEV_SECRET or len(secret) < 32:
                raise ValueError(
                    "DCR_PSEUDONYM_SECRET must be set to a random value of at least 32 characters "
                    "when DCR_ENV=prod"
                )
        return self


class AuthSettings(BaseSettings):
    """``DCR_AUTH_*``: where the hashed bearer tokens are configured (see shared.auth)."""

    model_config = SettingsConfigDict(env_prefix="DCR_AUTH_")

    tokens_file: Path = REPO_ROOT / ".state" / "auth" / "tokens.yaml"


class IngestSettings(BaseSettings):
    """``DCR_INGEST_*``: what the ingest APIs accept."""

    model_config = SettingsConfigDict(env_prefix="DCR_INGEST_")

    #: ``occurred_at`` may be at most this far in the future (facility clocks drift).
    clock_skew_s: float = Field(default=300.0, ge=0)
    #: Events older than this are refused (late reporting beyond it goes through an admin path).
    horizon_days: float = Field(default=30.0, gt=0)
    #: Largest request body accepted, in bytes.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    #: Seconds a client is told to wait (``Retry-After``) when Kafka is unavailable.
    retry_after_s: int = Field(default=2, ge=1)
