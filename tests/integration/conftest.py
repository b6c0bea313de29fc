"""Integration tests run against the REAL Kafka and PostgreSQL started by deploy/scripts
(make test). The session fixtures (``test_env``: topic prefix, database, tokens) live in
``tests/conftest.py`` so that tests/faults shares the same session; ``TestEnv`` and
``_delete_topics`` are re-exported here for the modules that import them from this file."""

from __future__ import annotations

import pytest

from tests.support import TestEnv
from tests.support import delete_topics as _delete_topics

__all__ = ["TestEnv", "_delete_topics"]

pytestmark = pytest.mark.integration
