"""The incident service's background work, composed for its app: the drug alert evaluator
(:mod:`services.incident.alert_worker`) and the notifier (:mod:`services.incident.notifier`).
Their liveness joins ``/healthz`` (``alert_worker``, ``notifier``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from services.incident.alert_worker import AlertWorker, run_alert_worker
from services.incident.notifier import Notifier, run_notifier
from services.incident.settings import AlertSettings, NotifySettings
from shared.bootstrap import Platform
from shared.contacts import ContactsSettings
from shared.ingest.app import Background, IngestConfig, Runtime


@dataclass(frozen=True)
class IncidentConfig:
    """The incident process's settings beyond ingest's, built once (each from its ``DCR_*``
    variables by default; tests pass their own)."""

    platform: Platform = field(default_factory=Platform)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    #: Refuses an unsafe webhook secret in prod when built, before anything runs.
    notify: NotifySettings = field(default_factory=NotifySettings)
    contacts: ContactsSettings = field(default_factory=ContactsSettings)
    #: The ingest settings (limits, pseudonym key); None: built from ``platform`` and the
    #: environment by the ingest app.
    ingest: IngestConfig | None = None


@dataclass(frozen=True)
class IncidentWorkers:
    alerts: AlertWorker
    notifier: Notifier | None

    def health_checks(self) -> dict[str, bool]:
        checks = self.alerts.health_checks()
        if self.notifier is not None:
            checks["notifier"] = self.notifier.alive()
        return checks


def incident_workers(config: IncidentConfig) -> Background:
    """The ``background`` hook of the incident app: both workers on the app's pool and
    publisher, configured by ``config``."""

    @asynccontextmanager
    async def run(rt: Runtime) -> AsyncIterator[IncidentWorkers]:
        notify = config.notify
        async with AsyncExitStack() as stack:
            alerts = await stack.enter_async_context(run_alert_worker(rt, config.alerts))
            notifier = (
                await stack.enter_async_context(
                    run_notifier(rt, notify, config.alerts.retry_s, config.contacts.file)
                )
                if notify.enabled
                else None
            )
            yield IncidentWorkers(alerts, notifier)

    return run
