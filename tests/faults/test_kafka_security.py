"""Faults: who may talk to a secured broker, and what each identity may do there (issue 16).

One throwaway broker with the cluster's security overlay (deploy/kafka/secured.properties:
SASL/SCRAM-SHA-512 identities from deploy/scripts/kafka-secrets.sh, TLS, the standard authorizer,
deny by default) and the ACLs of shared/kafka/acls.py for this module's topic prefix. Never the
shared PLAINTEXT broker on :9092.

- TLS: the broker's certificate verifies against the checkout's CA and its host name; a client
  trusting another CA, or expecting another host, refuses the connection.
- Forged records: no credential, a wrong password, or TLS without SASL never get a record into
  ``dcr.incidents`` (the broker logs the failed authentication).
- Least privilege: intake cannot write ``dcr.incidents``, supply cannot write ``dcr.visits``,
  intake cannot read ``dcr.visits``, and the incident identity cannot commit offsets in the
  projection's consumer group.
- The services themselves run with their own identities over TLS: every 202 reaches the read
  models exactly once and ``reconcile`` (as the projection) exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from harness.isolation import kafka_env
from harness.process import INTAKE_APP, PROJECTION_APP, SUPPLY_APP, ServiceProcess
from shared.city import load_city
from shared.kafka.acls import create_acls, grants
from shared.kafka.admin import ensure_topics
from shared.kafka.security import client_kwargs, ssl_context
from shared.kafka.topics import ALL_TOPICS, INCIDENTS, VISITS
from shared.settings import CitySettings, KafkaSettings
from tests.faults.conftest import reconcile, report
from tests.faults.test_kafka_outage import FACILITIES, SERVICE_ENV, _read_models
from tests.faults.throwaway import SecuredKafka, ThrowawayKafka, make_kafka_secrets, try_write
from tests.faults.traffic import Traffic
from tests.support import TestEnv, isolated_env, poll_until

pytestmark = pytest.mark.integration

PREFIX = "fsec."
PARTITIONS = 6


@dataclass(frozen=True)
class Secured:
    broker: SecuredKafka
    #: secrets of another checkout: a CA the broker's certificate is not signed by
    foreign: Path

    def as_(self, username: str, **overrides: object) -> KafkaSettings:
        return self.broker.settings(username, topic_prefix=PREFIX, **overrides)


@pytest.fixture(scope="module")
async def secured() -> AsyncIterator[Secured]:
    if not ThrowawayKafka.available():
        pytest.fail("Kafka jars missing: run deploy/scripts/kafka.sh install")
    work = Path(tempfile.mkdtemp(prefix="dcr-faults-kafka-sec-"))
    broker = SecuredKafka(work / "broker", make_kafka_secrets(work / "secrets"))
    foreign = make_kafka_secrets(work / "foreign")
    broker.format()
    broker.start()
    try:
        await broker.wait_ready()
        admin = broker.settings("admin")
        await ensure_topics(admin, PARTITIONS, prefix=PREFIX)
        await create_acls(admin, grants(PREFIX))
        yield Secured(broker, foreign)
    finally:
        broker.stop(signal.SIGKILL)


async def _handshake(settings: KafkaSettings, server_hostname: str) -> str:
    """TLS handshake with the broker as a client with ``settings``; the peer's CN."""
    host, port = settings.bootstrap_servers.split(":")
    context = ssl_context(settings)
    assert context is not None
    _, writer = await asyncio.open_connection(
        host, int(port), ssl=context, server_hostname=server_hostname
    )
    try:
        cert = writer.get_extra_info("peercert")
        return str(dict(x[0] for x in cert["subject"])["commonName"])
    finally:
        writer.close()


async def test_tls_certificate_is_verified(secured: Secured) -> None:
    ours = secured.as_("intake")
    assert await _handshake(ours, "127.0.0.1") == "dcr-kafka-broker"
    # a client trusting another CA refuses the broker's certificate
    theirs = secured.as_("intake", ca_file=secured.foreign / "tls" / "ca.pem")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await _handshake(theirs, "127.0.0.1")
    # the certificate names 127.0.0.1, localhost and the compose hosts, nothing else
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await _handshake(ours, "kafka.example.org")
    # and a Kafka client with the foreign CA gets no connection at all
    producer = AIOKafkaProducer(**client_kwargs(theirs), request_timeout_ms=5000)
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


async def _incident_count(secured: Secured) -> int:
    consumer = AIOKafkaConsumer(**client_kwargs(secured.as_("admin")), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(PREFIX + INCIDENTS, p) for p in range(PARTITIONS)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def _try_forge(kwargs: dict[str, Any]) -> KafkaError | None:
    """Write a forged incident with these client arguments; the error that stopped it."""
    return await try_write(kwargs, PREFIX + INCIDENTS, b'{"forged": true}')


async def test_forged_records_without_a_valid_credential_are_refused(
    secured: Secured, tmp_path: Path
) -> None:
    before = await _incident_count(secured)
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-incident-password\n")
    wrong.chmod(0o600)
    attempts: dict[str, dict[str, Any]] = {
        "no credential (PLAINTEXT)": {"bootstrap_servers": secured.broker.bootstrap},
        "TLS without SASL": {
            "bootstrap_servers": secured.broker.bootstrap,
            "security_protocol": "SSL",
            "ssl_context": ssl_context(secured.as_("incident")),
        },
        "wrong password": client_kwargs(secured.as_("incident", password_file=wrong)),
        "unknown user": {
            **client_kwargs(secured.as_("incident")),
            "sasl_plain_username": "mallory",
        },
    }
    outcomes = {what: await _try_forge(kwargs) for what, kwargs in attempts.items()}
    report("forged records", **{k: type(v).__name__ for k, v in outcomes.items()})
    assert all(v is not None for v in outcomes.values()), outcomes
    assert await _incident_count(secured) == before, "a forged record was written"
    broker_log = secured.broker.log_path.read_text(errors="replace")
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in broker_log


async def test_a_service_credential_cannot_act_for_another_service(secured: Secured) -> None:
    async def write(username: str, topic: str) -> None:
        producer = AIOKafkaProducer(
            **client_kwargs(secured.as_(username)),
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=5000,
        )
        await producer.start()
        try:
            await producer.send_and_wait(PREFIX + topic, b"{}")
        finally:
            await producer.stop()

    await write("intake", VISITS)  # its own topic: allowed
    with pytest.raises(TopicAuthorizationFailedError):
        await write("intake", INCIDENTS)
    with pytest.raises(TopicAuthorizationFailedError):
        await write("supply", VISITS)

    # intake produces visits but does not consume them
    reader = AIOKafkaConsumer(**client_kwargs(secured.as_("intake")), group_id=None)
    await reader.start()
    try:
        reader.assign([TopicPartition(PREFIX + VISITS, p) for p in range(PARTITIONS)])
        with pytest.raises(TopicAuthorizationFailedError):
            for _ in range(20):  # the first fetch answer carries the refusal
                await reader.getmany(timeout_ms=500)
    finally:
        await reader.stop()

    # incident reads dcr.incidents, but may not move the projection's offsets
    projection_group = PREFIX + "dcr-projection"
    intruder = AIOKafkaConsumer(
        **client_kwargs(secured.as_("incident")),
        group_id=projection_group,
        enable_auto_commit=False,
    )
    tp = TopicPartition(PREFIX + INCIDENTS, 0)
    with pytest.raises(GroupAuthorizationFailedError):
        await intruder.start()
        intruder.assign([tp])
        await intruder.commit({tp: 0})
    await intruder.stop()


async def test_services_run_with_their_own_identities_over_tls(
    secured: Secured, test_env: TestEnv, tmp_path: Path
) -> None:
    admin = secured.broker.settings("admin")
    procs: list[ServiceProcess] = []
    async with isolated_env(test_env, label="fsecure", bootstrap=admin) as env:
        assert await create_acls(admin, grants(env.topic_prefix)) > len(ALL_TOPICS)
        apps = {"intake": INTAKE_APP, "supply": SUPPLY_APP, "projection": PROJECTION_APP}
        try:
            for name, app in apps.items():
                identity = kafka_env(secured.broker.settings(name))
                # the isolated environment, as this service's identity over TLS
                child = env.env(**SERVICE_ENV, **identity)
                procs.append(ServiceProcess(tmp_path, name, app, base=child).start())
            await asyncio.gather(*(p.wait_healthy(timeout=90) for p in procs))
            urls = {p.name: p.url for p in procs}
            traffic = Traffic(
                {"intake": urls["intake"], "supply": urls["supply"]},
                env.tokens,
                load_city(CitySettings().file),
                FACILITIES,
                seed=1616,
                max_per_facility=5,
            )
            await traffic.run()
            await traffic.drain(timeout=60)
            assert not traffic.unexpected, traffic.unexpected[:10]
            accepted = {r.event_id for r in traffic.reports if r.accepted}
            assert len(accepted) == len(FACILITIES) * 5

            async def applied() -> bool:
                return (await _read_models(env.dsn)).ids == accepted

            await poll_until(applied, timeout=90, what="every 202 in the read models")
            rows = await _read_models(env.dsn)
            assert rows.daily == traffic.expected_daily()
            done = await reconcile(wait_s=30, base=env.env(**identity))  # as the projection
            assert done.code == 0, done.out
        finally:
            for p in procs:
                p.terminate()
