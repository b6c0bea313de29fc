"""The projection's settings, built once per process (the service, the public API, rebuild,
reconcile, retention) and passed down: :class:`ProjectionConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from services.projection.retention import RetentionSettings
from services.projection.settings import ProjectionSettings
from shared.bootstrap import Platform
from shared.settings import IngestSettings


@dataclass(frozen=True)
class ProjectionConfig:
    """Everything a projection process is configured with (each from its ``DCR_*``
    variables by default; tests pass their own)."""

    platform: Platform = field(default_factory=Platform)
    settings: ProjectionSettings = field(default_factory=ProjectionSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    #: Ingest's acceptance horizon: retention keeps what a late event could still change.
    ingest: IngestSettings = field(default_factory=IngestSettings)

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.ingest.horizon_days)
