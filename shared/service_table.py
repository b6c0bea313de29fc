"""The platform's services as one table (``deploy/services.txt``): name, uvicorn app, port,
metrics path and role. The scripts, the Prometheus configs, the compose checks and the harness
all derive from it; nothing else spells a service's port or app.

Not for deployed code: the service image has no ``deploy/services.txt`` (no service imports
this module; tests/unit/test_harness_rules.py checks it).

Invariants (checked on load): names and ports are unique; an app is ``module:create_app``; a
metrics path starts with ``/`` or is ``None`` (not scraped).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from shared.settings import REPO_ROOT

TABLE = REPO_ROOT / "deploy" / "services.txt"


class Role(StrEnum):
    INGEST = "ingest"
    PROJECTION = "projection"
    PUBLIC = "public"
    FRONTDESK = "frontdesk"


@dataclass(frozen=True)
class Service:
    name: str
    app: str
    port: int
    metrics_path: str | None
    role: Role

    @property
    def scraped(self) -> bool:
        return self.metrics_path is not None


def load_services(path: Path = TABLE) -> tuple[Service, ...]:
    """The table's rows in order (start order); ValueError naming the line if one is bad."""
    out: list[Service] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = line.split()
        if len(cells) != 5:
            raise ValueError(f"{path}:{n}: expected 5 columns, found {len(cells)}")
        name, app, port, metrics, role = cells
        if not app.endswith(":create_app") or not port.isdigit():
            raise ValueError(f"{path}:{n}: app must be module:create_app and port a number")
        if metrics != "-" and not metrics.startswith("/"):
            raise ValueError(f"{path}:{n}: metrics path must start with / (or be -)")
        out.append(Service(name, app, int(port), None if metrics == "-" else metrics, Role(role)))
    for column in ("name", "port"):
        values = [getattr(s, column) for s in out]
        if len(values) != len(set(values)):
            raise ValueError(f"{path}: duplicate {column} in {values}")
    return tuple(out)


SERVICES: tuple[Service, ...] = load_services()


def service(name: str) -> Service:
    """The row of service ``name`` (KeyError if the table has none)."""
    for s in SERVICES:
        if s.name == name:
            return s
    raise KeyError(name)
