"""Typed settings shared by every service (pydantic-settings, one env prefix per concern).

Defaults are the local development values used by ``make up``; production overrides them through
the environment. Secrets have no default at all (see :class:`SecuritySettings`): a service that
needs one refuses to start until it is configured, and ``DCR_ENV`` defaults to ``prod``.
"""

from __future__ import annotations

import math
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The development secret (public: it is in this repository). Accepted only with an explicit
#: ``DCR_ENV=dev``; ``make up`` does not even use it (it generates a random local secret).
DEV_SECRET = "dev-only-insecure-secret-change-me"  # noqa: S105
#: Strength a pseudonym secret must have outside development (see :func:`secret_weakness`).
MIN_SECRET_CHARS = 32
MIN_SECRET_BITS = 128.0
MIN_SECRET_DISTINCT = 12


class Environment(StrEnum):
    """``DCR_ENV``. Only ``dev`` relaxes anything (it accepts :data:`DEV_SECRET`); ``test`` is
    as strict as ``prod``. Unset means ``prod``: nothing fails open by default."""

    DEV = "dev"
    TEST = "test"
    PROD = "prod"


def refuse_public_signing_secret(variable: str, secret: str, env: Environment) -> None:
    """ValueError naming ``variable`` if ``secret`` (a signing key: sessions, webhooks) is the
    public development secret or shorter than :data:`MIN_SECRET_CHARS` while ``env`` is prod."""
    if env is Environment.PROD and (secret == DEV_SECRET or len(secret) < MIN_SECRET_CHARS):
        raise ValueError(
            f"{variable} must be a random value of at least {MIN_SECRET_CHARS} characters "
            "when DCR_ENV=prod"
        )


def secret_weakness(secret: str) -> str | None:
    """Why ``secret`` is too weak to key pseudonyms of low-entropy client codes; None if strong.

    Rules: at least :data:`MIN_SECRET_CHARS` characters, at least :data:`MIN_SECRET_DISTINCT`
    distinct characters, no repeated pattern (at most 10% of its 4-character windows repeat),
    and an estimated entropy (length x Shannon entropy of its character frequencies) of at
    least :data:`MIN_SECRET_BITS` bits. ``secrets.token_hex(32)`` (64 hex
    chars, ~240 bits by this estimate) passes; 32 x "a" (0 bits) does not. The estimate is an
    upper bound for a human-chosen secret: passing it is necessary, not sufficient.
    """
    if len(secret) < MIN_SECRET_CHARS:
        return f"shorter than {MIN_SECRET_CHARS} characters"
    counts = Counter(secret)
    if len(counts) < MIN_SECRET_DISTINCT:
        return f"fewer than {MIN_SECRET_DISTINCT} distinct characters"
    windows = [secret[i : i + 4] for i in range(len(secret) - 3)]
    if len(set(windows)) < 0.9 * len(windows):
        return "it repeats a pattern"
    n = len(secret)
    bits = n * -sum(c / n * math.log2(c / n) for c in counts.values())
    if bits < MIN_SECRET_BITS:
        return f"estimated entropy {bits:.0f} bits is below {MIN_SECRET_BITS:.0f}"
    return None


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

    #: How clients reach the brokers (issue 16, docs/kafka-cluster.md): PLAINTEXT only on the
    #: loopback development node; SASL_SSL (SCRAM-SHA-512 over TLS, the cluster's default) or
    #: SASL_PLAINTEXT (SCRAM without TLS, measured in bench) on a secured cluster.
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512"] = "SCRAM-SHA-512"
    #: This process's Kafka identity (one per service: intake, supply, incident, projection).
    username: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,30}$")
    #: File holding the password (0600, .state/auth/kafka/<username>.password); never the
    #: password itself in the environment.
    password_file: Path | None = None
    #: PEM CA that signed the brokers' certificates (SASL_SSL); the certificate and host name
    #: are always verified.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _secured_needs_identity(self) -> KafkaSettings:
        if self.security_protocol != "PLAINTEXT" and (
            self.username is None or self.password_file is None
        ):
            raise ValueError(
                f"DCR_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "DCR_KAFKA_USERNAME and DCR_KAFKA_PASSWORD_FILE"
            )
        if self.security_protocol == "SASL_SSL" and self.ca_file is None:
            raise ValueError("DCR_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs DCR_KAFKA_CA_FILE")
        return self

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
    """``DCR_*``: environment and the pseudonym key.

    Invariants (checked when the settings are built, so a service refuses to start):
    ``DCR_PSEUDONYM_SECRET`` must be set explicitly (there is no default); :data:`DEV_SECRET` is
    accepted only with ``DCR_ENV=dev``; any other secret must pass :func:`secret_weakness`.
    ``DCR_PSEUDONYM_KEY_ID`` names the secret: it travels with every pseudonym so the key can be
    rotated (docs/pseudonym-keys.md); a new secret needs a new key id.
    """

    model_config = SettingsConfigDict(env_prefix="DCR_")

    env: Environment = Environment.PROD
    pseudonym_secret: SecretStr | None = None
    pseudonym_key_id: str = Field(default="k1", pattern=r"^[a-z0-9]{1,16}$")

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> SecuritySettings:
        if self.pseudonym_secret is None:
            raise ValueError(
                "DCR_PSEUDONYM_SECRET is not set: generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        secret = self.pseudonym_secret.get_secret_value()
        if secret == DEV_SECRET:
            if self.env is not Environment.DEV:
                raise ValueError(
                    "DCR_PSEUDONYM_SECRET is the public development secret; it is accepted "
                    "only with DCR_ENV=dev"
                )
            return self
        weakness = secret_weakness(secret)
        if weakness is not None:
            raise ValueError(f"DCR_PSEUDONYM_SECRET is too weak: {weakness}")
        return self

    def secret_bytes(self) -> bytes:
        """The configured secret (present: the validator refuses settings without one)."""
        assert self.pseudonym_secret is not None
        return self.pseudonym_secret.get_secret_value().encode()


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
