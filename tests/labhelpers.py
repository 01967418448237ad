"""Starting and reaching real lab processes from tests (``llmd-lab up --port 0`` in a temporary home).

A module of its own, not conftest.py, so test modules can import it by a name no other file shares.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


@dataclass
class Lab:
    """A running lab: where its state lives and how to reach it."""

    home: Path
    kubeconfig: Path
    url: str
    env: dict[str, str]  # os.environ + LLMD_LAB_HOME + KUBECONFIG, for subprocesses (kubectl)

    @property
    def ca_file(self) -> Path:
        """The lab API server's CA (it serves HTTPS with a private CA, like a cluster)."""
        return self.home / "pki" / "ca.crt"

    def ssl_context(self):
        """An ``ssl.SSLContext`` trusting the lab's CA, for httpx (``verify=lab.ssl_context()``)."""
        import ssl

        return ssl.create_default_context(cafile=str(self.ca_file))

    def api_client(self):
        """A fresh ``kubernetes.client.ApiClient`` configured from the lab's kubeconfig."""
        return api_client(self.kubeconfig)


def api_client(kubeconfig: Path):
    """A fresh ``kubernetes.client.ApiClient`` configured from ``kubeconfig`` (its own Configuration, so
    tests never touch the client library's process-wide default)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def eventually(check: Callable[[], T], timeout_s: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail the test, naming ``what`` and
    the last value seen, once ``timeout_s`` has passed (the lab runs in other processes: poll, never sleep)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


def run_cli(home: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run ``llmd-lab ARGS`` with ``LLMD_LAB_HOME=home``; never raises on a non-zero exit."""
    env = {**os.environ, "LLMD_LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "llmd_lab.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def lab_url(home: Path) -> str:
    import json

    return json.loads((home / "lab.json").read_text())["url"]


@contextmanager
def running_lab(home: Path, *up_args: str) -> Iterator[Lab]:
    """Start a lab in ``home`` (``llmd-lab up --port 0 UP_ARGS``), yield it, and take it down afterwards."""
    started = run_cli(home, "up", "--port", "0", *up_args)
    if started.returncode != 0:
        pytest.fail(f"llmd-lab up failed ({started.returncode}):\n{started.stdout}\n{started.stderr}")
    kubeconfig = home / "kubeconfig"
    env = {**os.environ, "LLMD_LAB_HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    try:
        yield Lab(home=home, kubeconfig=kubeconfig, url=lab_url(home), env=env)
    finally:
        run_cli(home, "down")


@contextmanager
def lab_connection(lab: Lab, namespace: str) -> Iterator:
    """``llmd_lab.connect(namespace)`` reaching ``lab`` the way a laptop notebook does: through
    ``KUBECONFIG``, outside any pod. The environment is restored on exit."""
    from llmd_lab.connection import connect

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        mp.setenv("KUBECONFIG", str(lab.kubeconfig))
        yield connect(namespace, start_lab=False)
