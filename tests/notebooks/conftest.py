"""Fixtures for executing the notebooks: one fresh lab in the CI shape, and per-notebook timings.

The lab runs as a real process (``llmd-lab up --profile rhoai-3.0 --time-scale 20``) in a temporary
``LLMD_LAB_HOME``; kernels started by papermill and nbval inherit ``KUBECONFIG`` pointing at it, which is how a
learner's kernel finds a cluster too (``connect()`` reads the kubeconfig).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nbrun import LAB_ARGS, TIMINGS, NotebookLab


def _cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMD_LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "llmd_lab.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


@pytest.fixture(scope="session")
def notebook_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotebookLab]:
    home = tmp_path_factory.mktemp("nb-lab-home")
    started = _cli(home, "up", "--port", "0", *LAB_ARGS)
    if started.returncode != 0:
        pytest.fail(f"llmd-lab up {' '.join(LAB_ARGS)} failed:\n{started.stderr[-2000:]}")
    out = tmp_path_factory.mktemp("executed")
    exported = tmp_path_factory.mktemp("exported")
    env = {"LLMD_LAB_HOME": str(home), "KUBECONFIG": str(home / "kubeconfig")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # papermill's kernels inherit this environment
    try:
        yield NotebookLab(home, home / "kubeconfig", out, exported, {**os.environ, **env})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _cli(home, "down")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("notebook times")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
    total = sum(v for k, v in TIMINGS.items() if not k.startswith("  "))  # cell-only lines are inside the nbval run
    terminalreporter.write_line(f"{total:7.1f} s  total")
