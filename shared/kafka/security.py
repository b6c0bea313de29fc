"""How a Kafka client of this platform connects: the one place that turns :class:`KafkaSettings`
into the connection arguments of aiokafka producers, consumers and admin clients, and into
FastStream's security object.

Invariants: with SASL_SSL the broker's certificate is verified against ``DCR_KAFKA_CA_FILE``
and its host name checked (never ``CERT_NONE``); a secured protocol without a readable, non-empty
password file refuses to build a client (fails closed, before any connection). The password is
read from its file, never from the environment, and never logged.
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import BaseSecurity, SASLScram512

from shared.settings import KafkaSettings


class KafkaCredentialError(RuntimeError):
    """The configured Kafka credential cannot be used (missing or empty password file)."""


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """A verifying TLS context trusting only ``ca_file``; None unless SASL_SSL."""
    if settings.security_protocol != "SASL_SSL":
        return None
    assert settings.ca_file is not None  # the settings validator requires it
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(settings.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def password(settings: KafkaSettings) -> str:
    """The password in ``password_file`` (first line); KafkaCredentialError if unusable."""
    path = settings.password_file
    if path is None:
        raise KafkaCredentialError("DCR_KAFKA_PASSWORD_FILE is not set")
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KafkaCredentialError(f"cannot read DCR_KAFKA_PASSWORD_FILE {path}: {exc}") from exc
    if not text:
        raise KafkaCredentialError(f"DCR_KAFKA_PASSWORD_FILE {path} is empty")
    return text


def client_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient:
    ``bootstrap_servers`` and, on a secured cluster, the SASL and TLS arguments."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol == "PLAINTEXT":
        return kwargs
    return {
        **kwargs,
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_plain_username": settings.username,
        "sasl_plain_password": password(settings),
        "ssl_context": ssl_context(settings),
    }


def faststream_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The same connection for a FastStream KafkaBroker (``security=``); None for PLAINTEXT."""
    if settings.security_protocol == "PLAINTEXT":
        return None
    assert settings.username is not None  # the settings validator requires it
    context = ssl_context(settings)
    return SASLScram512(
        settings.username, password(settings), ssl_context=context, use_ssl=context is not None
    )


#: What an admin helper connects to: the process's settings, or a bare bootstrap list of a
#: PLAINTEXT broker (the tests' and benchmarks' own brokers).
Target = KafkaSettings | str


def target_kwargs(target: Target) -> dict[str, Any]:
    """:func:`client_kwargs` of ``target``; a bare string is a PLAINTEXT bootstrap list."""
    if isinstance(target, str):
        return {"bootstrap_servers": target}
    return client_kwargs(target)


def target_name(target: Target) -> str:
    """The bootstrap list of ``target`` (for messages; never the credential)."""
    return target if isinstance(target, str) else target.bootstrap_servers
