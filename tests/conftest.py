"""Shared fixtures. ``lab``: a real lab process (``llmd-lab up --port 0``) in a temporary ``LLMD_LAB_HOME``.

The fixture is session-scoped (one lab start for the whole run) and torn down with ``llmd-lab down``;
tests that need their own lab (lifecycle tests) start one with ``labhelpers.running_lab`` or ``run_cli`` in their own home.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from labhelpers import Lab, lab_url, run_cli, running_lab

__all__ = ["Lab", "lab_url", "run_cli", "running_lab"]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab shared by the whole run: tests must leave its GPUs as they found them."""
    with running_lab(tmp_path_factory.mktemp("llmd-lab-home")) as shared:
        yield shared


@pytest.fixture
def lab_cli():
    """``run_cli(home, *args)``: run the ``llmd-lab`` CLI against a given ``LLMD_LAB_HOME``."""
    return run_cli


@pytest.fixture(autouse=True)
def _event_loop_policy_is_left_alone() -> Iterator[None]:
    """A test that swaps the process-wide event-loop policy (``import guidellm`` installs uvloop's) changes the
    loop every later test runs on; fail the test that did it, by name, rather than the innocent ones after it."""
    before = type(asyncio.get_event_loop_policy())
    yield
    after = type(asyncio.get_event_loop_policy())
    if after is not before:
        asyncio.set_event_loop_policy(None)
        pytest.fail(f"this test changed the event-loop policy from {before.__name__} to {after.__name__}")
