"""Shared test configuration: hypothesis profiles.

Select a profile with the ``HYPOTHESIS_PROFILE`` environment variable (default ``ci``):

- ``ci``: 200 examples per test, no deadline (CI machines are small and noisy).
- ``dev``: more examples, for a developer hunting a bug.
- ``long``: many examples, for soak runs (pair with ``-m slow``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog
from hypothesis import HealthCheck, settings

import custody  # noqa: F401  (first: bitcoinlib's files go to a temporary directory, not $HOME)

if TYPE_CHECKING:
    from tests.gateway_support import ServerThread
    from tests.reference_support import Exchange

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "dev",
    max_examples=1_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "long",
    max_examples=10_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """A test that runs the CLI configures structlog (say, ``--log-level error``); reset it so
    later tests that capture warnings see them, whatever the order the tests run in."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def ex() -> Exchange:
    """A fresh reference-model exchange (tests/reference_support.py), for the test_reference_*
    files; imported here, not at the top, so the other tests do not load its harness."""
    from tests.reference_support import Exchange

    return Exchange()


# The CLI tests' data (test_cli_errors_*.py, test_cli_mistakes.py; helpers: tests/cli_support.py).


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a journal and a snapshot (not modified by the tests)."""
    from tests.cli_support import make_data_dir

    return make_data_dir(tmp_path_factory.mktemp("cli") / "data", snapshot=True)


@pytest.fixture()
def copy_dir(demo_dir: Path, tmp_path: Path) -> Path:
    """A private copy a test may damage."""
    return Path(shutil.copytree(demo_dir, tmp_path / "data"))


@pytest.fixture()
def empty_db() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (its DSN), dropped after the test."""
    from tests.serve_support import pg_admin

    name = f"kb_cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_admin(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[ServerThread]:
    """A test server whose identity store is SQLite in its data dir (test_backoffice_auth_*)."""
    from tests.gateway_support import ServerThread

    srv = ServerThread(tmp_path, fixture_accounts=False, marketdata=False)
    try:
        yield srv
    finally:
        srv.stop()
