"""The lab process lifecycle through the ``llmd-lab`` CLI: up, status, down, reset, side-by-side labs."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from kubernetes import client, config


def _core(home: Path) -> client.CoreV1Api:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(home / "kubeconfig"), client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def lab_url(home: Path) -> str:
    return json.loads((home / "lab.json").read_text())["url"]


def _token(home: Path) -> str:
    return (home / "token").read_text().strip()


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """``llmd-lab ARGS`` run in this process (the lab itself is still a spawned process), with its output.

    In-process saves a Python start per command; ``tests/conftest.py``'s ``lab`` fixture covers the
    console script through a real subprocess.
    """
    from llmd_lab.cli import main

    def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as env:
            env.setenv("LLMD_LAB_HOME", str(home))
            capsys.readouterr()
            code = main(list(args))
            out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["llmd-lab", *args], code, out, err)

    return run


@pytest.fixture
def home(tmp_path: Path, run_cli):
    home = tmp_path / "lab"
    yield home
    run_cli(home, "down")


def test_lifecycle_up_twice_status_side_by_side_down_up_reset(home, run_cli, lab):
    first = run_cli(home, "up", "--port", "0")
    assert first.returncode == 0, first.stderr
    assert "lab started" in first.stdout and str(home / "kubeconfig") in first.stdout
    url = lab_url(home)
    pid = json.loads((home / "lab.json").read_text())["pid"]

    again = run_cli(home, "up")
    assert again.returncode == 0 and "already running" in again.stdout and f"pid {pid}" in again.stdout

    other_profile = run_cli(home, "up", "--profile", "fresh")
    assert other_profile.returncode == 1 and "already running" in other_profile.stderr
    assert "llmd-lab down" in other_profile.stderr

    status = run_cli(home, "status", "--json")
    st = json.loads(status.stdout)
    assert status.returncode == 0 and st["running"] and st["url"] == url and st["pid"] == pid
    assert st["profile"] == "rhoai-3.0" and st["uptime_s"] >= 0 and st["objects"]["Namespace"] >= 4

    # side by side with the session's lab: another port, another token, separate objects
    assert url != lab.url and _token(home) != _token(lab.home)
    _core(home).create_namespaced_config_map("default", {"metadata": {"name": "survives-restart"}, "data": {"k": "v"}})
    assert "survives-restart" not in {
        cm.metadata.name for cm in _core(lab.home).list_namespaced_config_map("default").items}

    down = run_cli(home, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not (home / "lab.json").exists()
    stopped = run_cli(home, "status")
    assert stopped.returncode == 3 and "not running" in stopped.stdout
    assert "ConfigMap 1" in stopped.stdout  # counts come from state.db even while down

    assert run_cli(home, "up", "--port", "0").returncode == 0
    kept = _core(home).read_namespaced_config_map("survives-restart", "default")
    assert kept.data == {"k": "v"}

    outputs = first.stdout + first.stderr + again.stdout + status.stdout + down.stdout
    assert _token(home) not in outputs
    assert _token(home) not in (home / "lab.log").read_text()

    refused = run_cli(home, "reset")
    assert refused.returncode == 1 and "running" in refused.stderr and "--force" in refused.stderr
    assert (home / "state.db").exists()
    forced = run_cli(home, "reset", "--force")
    assert forced.returncode == 0
    assert not (home / "state.db").exists() and not (home / "token").exists() and not (home / "pki").exists()
    assert run_cli(home, "status").returncode == 3


def test_state_files_are_private_and_kubeconfig_is_usable(lab, run_cli):
    home = lab.home
    for name in ("kubeconfig", "token", "lab.json", "pki/server.key"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    kubeconfig = json.loads((home / "kubeconfig").read_text())
    assert kubeconfig["current-context"] == "llmd-lab"
    assert kubeconfig["contexts"][0]["context"]["namespace"] == "default"
    assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
    assert kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]
    assert kubeconfig["users"][0]["user"]["token"] == _token(home)
    printed = run_cli(home, "kubeconfig")
    assert printed.stdout.strip() == str(home / "kubeconfig")
    names = {ns.metadata.name for ns in _core(home).list_namespace().items}
    assert "default" in names


def test_up_fails_with_the_log_tail_when_the_port_is_taken(home, run_cli):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        failed = run_cli(home, "up", "--port", str(port))
    assert failed.returncode == 1
    assert "exited with code" in failed.stderr and f"cannot listen on 127.0.0.1:{port}" in failed.stderr
    assert not (home / "lab.json").exists()


def test_unauthenticated_requests_are_refused(lab):
    import httpx

    with httpx.Client(verify=lab.ssl_context(), timeout=5) as http:
        assert http.get(f"{lab.url}/api/v1/namespaces").status_code == 401
        wrong = http.get(f"{lab.url}/api/v1/namespaces", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["reason"] == "Unauthorized"
        token = (lab.home / "token").read_text().strip()
        right = http.get(f"{lab.url}/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200 and right.json()["kind"] == "NamespaceList"
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"), httpx.Client(timeout=5) as untrusting:
        untrusting.get(f"{lab.url}/readyz")  # TLS with the lab's own CA, not one from the system store
