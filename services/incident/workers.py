"""The incident service's background work, composed for its app: the drug alert evaluator
(:mod:`services.incident.alert_worker`) and the notifier (:mod:`services.incident.notifier`).
Their liveness joins ``/healthz`` (``alert_worker``, ``notifier``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from services.incident.alert_worker import AlertWorker, run_alert_worker
from services.incident.notifier import Notifier, run_notifier
from services.incident.settings import AlertSettings, NotifySettings
from shared.contacts import ContactsSettings
from shared.ingest.app import Runtime


@dataclass(frozen=True)
class IncidentWorkers:
    alerts: AlertWorker
    notifier: Notifier | None

    def health_checks(self) -> dict[str, bool]:
        checks = self.alerts.health_checks()
        if self.notifier is not None:
            checks["notifier"] = self.notifier.alive()
        return checks


@asynccontextmanager
async def run_incident_workers(rt: Runtime) -> AsyncIterator[IncidentWorkers]:
    """The ``background`` hook of the incident app: its settings built once, both workers on
    the app's pool and publisher."""
    notify = NotifySettings()  # refuses an unsafe webhook secret in prod before anything runs
    alerts_settings = AlertSettings()
    async with AsyncExitStack() as stack:
        alerts = await stack.enter_async_context(run_alert_worker(rt, alerts_settings))
        notifier = (
            await stack.enter_async_context(
                run_notifier(rt, notify, alerts_settings.retry_s, ContactsSettings().file)
            )
            if notify.enabled
            else None
        )
        yield IncidentWorkers(alerts, notifier)
