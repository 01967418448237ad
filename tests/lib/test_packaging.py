"""`pip install .` is the library alone: a workbench gets the helpers, not the lab or the dev tools.

A fresh virtual environment installs the project without extras, imports ``llmd_lab`` and runs
``connect()`` against a lab started from the development venv (the lab is a separate process, so the
library needs none of its dependencies). The install is bounded in time; without PyPI the test skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 600
#: Modules only the extras bring: the lab's servers, the simulators' codecs, JupyterLab, the test tools.
EXTRAS_ONLY = ("starlette", "uvicorn", "xxhash", "zmq", "cbor2", "msgpack", "cryptography", "kubernetes_validate",
               "jsonpatch", "jupyterlab", "papermill", "nbval", "pytest")  # fmt: skip

PROBE = """
import importlib.util, json, os
import llmd_lab
conn = llmd_lab.connect(os.environ["PROBE_NS"], start_lab=False)
present = [m for m in json.loads(os.environ["PROBE_ABSENT"]) if importlib.util.find_spec(m) is not None]
from llmd_lab import deploy, doctor, k8s, manifests, metrics, preflight, traffic, viz  # every public helper
print(json.dumps({"kind": conn.kind, "namespace": conn.namespace, "user": conn.user, "extras_present": present}))
"""


def _pypi_unreachable(python: Path, scratch: Path) -> str | None:
    """Why pip cannot fetch a tiny package (no network, no index), or None when it can."""
    probe = subprocess.run([str(python), "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(scratch), "six"],
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["pip download failed"])[-1]


def test_plain_install_imports_and_connects_without_the_extras(lab, tmp_path: Path) -> None:
    env_dir = tmp_path / "workbench-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    if why := _pypi_unreachable(python, tmp_path / "probe"):
        pytest.skip(f"PyPI is unreachable from this machine: {why}")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(ROOT)], capture_output=True,
                               text=True, timeout=INSTALL_TIMEOUT_S, check=False)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]

    env = {k: v for k, v in os.environ.items() if k not in ("KUBERNETES_SERVICE_HOST", "PYTHONPATH")}
    env.update(KUBECONFIG=str(lab.kubeconfig), HOME=str(tmp_path), PROBE_NS="default",
               PROBE_ABSENT=json.dumps(EXTRAS_ONLY))  # fmt: skip
    run = subprocess.run([str(python), "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["kind"] == "llmd-lab" and seen["namespace"] == "default", seen
    assert seen["extras_present"] == [], f"`pip install .` pulled in the extras' modules: {seen['extras_present']}"
