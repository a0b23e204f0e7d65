"""Fixtures shared by several test modules (`tests/` and the reliability suite in `tests/reliability/`).

Plain helper functions live in the `tests/_*.py` modules; only fixtures are here, because a fixture
imported into a test module by name clashes with the test parameters that request it.

Hypothesis replays the same examples on every run (profile `ci`, the default), so a red CI means a
change broke something, not that today's random examples found an old bug. To look for new bugs,
explore with fresh examples: `HYPOTHESIS_PROFILE=explore HOSTILE_EXAMPLES=2000 pytest tests/`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from otel_decisions import Runtime

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    """A seed `Runtime` recording into `tmp_path`."""
    return Runtime(tmp_path)


@pytest.fixture
def no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if anything logs at ERROR (e.g. OpenTelemetry's "Failed to detach context")."""
    caplog.set_level(logging.WARNING)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")  # `records` is teardown's only
    errors = [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.ERROR]
    assert errors == [], errors
