"""The ACL table of the service identities and the clients' security arguments (issue 16):
least privilege per service, deny by default on the brokers, and clients that fail closed."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.incident.settings import AlertSettings, NotifySettings
from services.projection.settings import ProjectionSettings
from shared.kafka.acls import DEFAULT_GROUPS, SERVICES, Operation, Resource, grants
from shared.kafka.security import KafkaCredentialError, client_kwargs, faststream_security
from shared.kafka.topics import ALERTS, ALL_TOPICS, CORRECTIONS, INCIDENTS, SUPPLIES, VISITS
from shared.settings import KafkaSettings
from tests.faults.throwaway import secured_overlay


def allowed(username: str, operation: Operation, resource: Resource, prefix: str = "") -> set[str]:
    return {
        g.name
        for g in grants(prefix)
        if g.username == username and g.operation is operation and g.resource is resource
    }


def test_each_service_writes_only_the_topics_of_its_own_events() -> None:
    writes = {who: allowed(who, Operation.WRITE, Resource.TOPIC) for who in SERVICES}
    assert writes == {
        "intake": {VISITS, CORRECTIONS},
        "supply": {SUPPLIES},
        "incident": {INCIDENTS, ALERTS},
        "projection": {"dcr.deadletter"},
    }


def test_only_consumers_read_and_only_their_own_groups() -> None:
    assert allowed("intake", Operation.READ, Resource.TOPIC) == set()
    assert allowed("supply", Operation.READ, Resource.TOPIC) == set()
    assert allowed("incident", Operation.READ, Resource.TOPIC) == {INCIDENTS, ALERTS}
    assert allowed("projection", Operation.READ, Resource.TOPIC) == set(ALL_TOPICS)
    groups = {who: allowed(who, Operation.READ, Resource.GROUP) for who in SERVICES}
    assert groups == {
        "intake": set(),
        "supply": set(),
        "incident": {"dcr-incident-alerts", "dcr-notifier"},
        "projection": {"dcr-projection"},
    }
    # no identity may alter another's topics' configuration, nobody but the projection at all
    assert {g.username for g in grants() if g.operation is Operation.ALTER_CONFIGS} == {
        "projection"
    }


def test_the_table_names_the_groups_the_services_really_join() -> None:
    assert set(DEFAULT_GROUPS["incident"]) == {
        AlertSettings.model_fields["consumer_group"].default,
        NotifySettings.model_fields["consumer_group"].default,
    }
    assert DEFAULT_GROUPS["projection"] == (ProjectionSettings.model_fields["group_id"].default,)


def test_a_test_prefix_grants_exactly_the_prefixed_names() -> None:
    prefixed = grants("t-1.")
    assert prefixed and all(g.name.startswith("t-1.") for g in prefixed)
    assert len(prefixed) == len(grants())


def test_brokers_deny_by_default_and_accept_no_anonymous_client(tmp_path: Path) -> None:
    (tmp_path / "admin.password").write_text("pw\n")
    text = secured_overlay(tmp_path, 9092, 19093)
    props = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["super.users"] == "User:admin"
    protocols = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    assert protocols == {"CLIENT": "SASL_SSL", "CONTROLLER": "SASL_PLAINTEXT"}
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "@" not in text.replace("User:admin", "")  # every placeholder rendered


def _secured(tmp_path: Path, password: str | None = "s3cret\n") -> KafkaSettings:
    if password is not None:
        (tmp_path / "intake.password").write_text(password)
    return KafkaSettings(
        bootstrap_servers="127.0.0.1:9092",
        security_protocol="SASL_SSL",
        username="intake",
        password_file=tmp_path / "intake.password",
        ca_file=tmp_path / "ca.pem",
    )


def test_plaintext_clients_get_no_credential() -> None:
    kwargs = client_kwargs(KafkaSettings(bootstrap_servers="127.0.0.1:9092"))
    assert kwargs == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_secured_clients_verify_the_broker_and_read_the_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _secured(tmp_path)
    loaded: list[str] = []
    monkeypatch.setattr(
        ssl.SSLContext, "load_verify_locations", lambda self, cafile=None, *a: loaded.append(cafile)
    )
    kwargs = client_kwargs(settings)
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "intake"
    assert kwargs["sasl_plain_password"] == "s3cret"
    context = kwargs["ssl_context"]
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert loaded == [str(tmp_path / "ca.pem")]
    security = faststream_security(settings)
    assert security is not None and security.use_ssl


def test_a_missing_or_empty_password_file_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(KafkaCredentialError, match="cannot read"):
        client_kwargs(_secured(tmp_path, password=None))
    with pytest.raises(KafkaCredentialError, match="empty"):
        client_kwargs(_secured(tmp_path, password="\n"))


def test_a_secured_protocol_without_identity_or_ca_is_refused() -> None:
    with pytest.raises(ValidationError, match="DCR_KAFKA_USERNAME"):
        KafkaSettings(security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ValidationError, match="DCR_KAFKA_CA_FILE"):
        KafkaSettings(
            security_protocol="SASL_SSL", username="intake", password_file=Path("/dev/null")
        )
