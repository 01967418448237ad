"""The machine's kubectl (1.32) against the bare API server: aggregated discovery, typed (protobuf) creates,
apply / get -o wide / label / scale / describe / delete / get -w / auth can-i."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from labserver import start_api_server

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed for the test server's TLS"),
]

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: c, image: nginx, ports: [{containerPort: 80}]}
"""


class Kubectl:
    def __init__(self, env: dict[str, str], cache: str) -> None:
        self.env, self.prefix = env, ["kubectl", "--cache-dir", cache]

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix, *args], env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*self.prefix, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    home = tmp_path_factory.mktemp("kubectl")
    server = start_api_server(tls_dir=home)
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig(home / "kubeconfig")), "HOME": str(home)}
    yield Kubectl(env, str(home / "cache"))
    server.stop()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_api_resources_and_typed_creates(kube):
    out = ok(kube("api-resources"))
    assert "deployments" in out and "deploy" in out and "customresourcedefinitions" in out
    ok(kube("create", "namespace", "team"))  # protobuf body
    ok(kube("-n", "team", "create", "secret", "generic", "hf-token", "--from-literal=token=abc"))
    assert ok(kube("-n", "team", "get", "secret", "hf-token", "-o", "jsonpath={.data.token}")) == "YWJj"
    assert ok(kube("auth", "can-i", "create", "pods")).strip() == "yes"


def test_apply_get_label_scale_describe_delete(kube):
    ok(kube("apply", "-f", "-", stdin=DEPLOYMENT))
    assert "unchanged" in ok(kube("apply", "-f", "-", stdin=DEPLOYMENT))
    wide = ok(kube("get", "deploy", "web", "-o", "wide"))
    assert wide.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                                           "SELECTOR"]
    assert "0/2" in wide and "app=web" in wide
    ok(kube("label", "deploy", "web", "tier=front"))
    ok(kube("scale", "deploy", "web", "--replicas=4"))
    got = ok(kube("get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.metadata.labels.tier}"))
    assert got == "4 front"
    assert "Replicas:" in ok(kube("describe", "deploy", "web"))
    ok(kube("delete", "deploy", "web"))
    assert "NotFound" in kube("get", "deploy", "web").stderr


def test_get_watch_prints_changes(kube):
    ok(kube("create", "configmap", "watched"))
    with kube.popen("get", "configmap", "watched", "-w", "-o", "name") as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # the initial listing
            assert first.strip() == "configmap/watched"
            ok(kube("label", "configmap", "watched", "changed=yes"))
            assert proc.stdout.readline().strip() == "configmap/watched"  # the MODIFIED event
        finally:
            proc.terminate()
