"""The README's first command, ``make lab``, starts the lab and a JupyterLab that serves notebook 00."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from labhelpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_lab_starts_the_lab_and_jupyterlab_on_notebook_00(tmp_path: Path) -> None:
    env = {**os.environ, "LLMD_LAB_HOME": str(tmp_path / "home"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    proc = subprocess.Popen(["make", "lab"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    url = None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(re.sub(r"token=\w+", "token=***", line))
            match = re.search(r"(http://127\.0\.0\.1:\d+/lab/tree/00-connect-and-orient\.ipynb\?token=\w+)", line)
            url = match.group(1) if match else None
        assert url, "make lab printed no JupyterLab URL for notebook 00:\n" + "".join(seen[-20:])
        assert any("lab started" in line or "already running" in line for line in seen), "".join(seen)
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "JupyterLab" in page.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
        run_cli(tmp_path / "home", "down")
