"""connect / preflight / deploy / doctor against the real lab (no mocks of the kubernetes client)."""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid

import pytest
import yaml
from kubernetes import config as kube_config
from kubernetes.dynamic import DynamicClient
from labhelpers import eventually

from llmd_lab import connection as connect_mod
from llmd_lab import deploy, doctor, k8s, manifests, preflight
from llmd_lab.connection import ClusterUnreachableError, NamespaceForbiddenError, UnauthorizedError, connect
from llmd_lab.kserve import names
from llmd_lab.kserve.names import child_name


@pytest.fixture
def lab_env(lab, monkeypatch, tmp_path):
    """Only the lab is findable: no in-cluster token, no kubeconfig, LLMD_LAB_HOME = the lab's home."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LLMD_LAB_HOME", str(lab.home))
    return lab


@pytest.fixture
def conn(lab_env):
    return connect("default", start_lab=False)


def _kubeconfig(path, lab, *, server: str | None = None, token: str | None = None, ca: bool = True) -> str:
    """The lab's kubeconfig with the server, token or CA replaced (the lab's own stays untouched)."""
    cfg = yaml.safe_load(lab.kubeconfig.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    if server:
        cluster["server"] = server
    if not ca:
        cluster.pop("certificate-authority-data", None)
        cluster.pop("certificate-authority", None)
    if token:
        cfg["users"][0]["user"] = {"token": token}
    path.write_text(json.dumps(cfg))
    return str(path)


def test_connect_attaches_to_running_lab_and_never_shows_the_token(conn, lab_env):
    token = (lab_env.home / "token").read_text().strip()
    assert conn.kind == "llmd-lab" and conn.is_lab and conn.server == lab_env.url
    assert conn.version.startswith("v1.") and conn.namespace == "default"
    assert conn.lab["port"] == json.loads((lab_env.home / "lab.json").read_text())["port"]
    shown = conn.summary() + repr(conn) + conn._repr_html_()
    assert token not in shown and "llmd-lab" in shown
    assert conn.bearer_token() == token  # available to code that needs it (Thanos, auth-enabled models)


def test_connect_through_kubeconfig_reports_the_lab(lab_env, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(lab_env.kubeconfig))
    conn = connect(start_lab=False)
    assert conn.kind == "llmd-lab" and "kubeconfig" in conn.source


def test_connect_errors_say_what_to_do(lab_env, tmp_path, monkeypatch):
    with pytest.raises(UnauthorizedError, match=r"401.*Log in again"):
        connect(kubeconfig=_kubeconfig(tmp_path / "bad", lab_env, token="expired-token"))
    with pytest.raises(ClusterUnreachableError, match="no answer"):
        connect(kubeconfig=_kubeconfig(tmp_path / "down", lab_env, server="https://127.0.0.1:9"))
    with pytest.raises(ClusterUnreachableError, match="certificate"):
        connect(kubeconfig=_kubeconfig(tmp_path / "noca", lab_env, ca=False))
    with pytest.raises(NamespaceForbiddenError, match="does not exist"):
        connect(f"nope-{uuid.uuid4().hex[:6]}", start_lab=False)
    monkeypatch.setenv("LLMD_LAB_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(ClusterUnreachableError, match="llmd-lab up"):
        connect(start_lab=False)
    with pytest.raises(connect_mod.ConnectError, match="oc login"):
        connect(allow_lab=False)


def test_preflight_on_rhoai_profile(conn):
    report = preflight.run(conn, replicas=2, queue=None)
    rows = report.set_index("check")
    assert rows.loc["DataScienceCluster", "status"] == "pass"
    assert rows.loc["Gateway openshift-ingress/openshift-ai-inference", "status"] == "pass"
    assert rows.loc["CRD AuthPolicy (kuadrant.io/v1)", "status"] == "pass"
    assert rows.loc["GPUs for the planned deployment", "status"] == "pass"
    assert "NVIDIA-L4" in rows.loc["GPU nodes", "evidence"]
    assert rows.loc["RBAC in default", "status"] == "pass"
    html = report._repr_html_()
    assert "#d4edda" in html  # the styled view colours rows
    too_big = preflight.run(conn, replicas=20, tensor=1, checks=[preflight.check_gpus])
    assert not too_big.ok and "need 20 GPUs" in too_big.failed()["evidence"].iloc[0]


@pytest.fixture
def fresh_lab(tmp_path_factory, lab_cli):
    home = tmp_path_factory.mktemp("fresh-lab")
    started = lab_cli(home, "up", "--port", "0", "--profile", "fresh")
    if started.returncode != 0:
        pytest.fail(f"llmd-lab up --profile fresh failed:\n{started.stderr}")
    yield home
    lab_cli(home, "down")


def _plant_stale_discovery(*, full, stale_for, monkeypatch, tmp_path) -> None:
    """What a laptop can hold: the kubernetes client's shared discovery cache (``osrcp-<md5 of URL>.json``
    in the temp dir) for this server's URL, written by an earlier lab on the same port that served
    AuthPolicy. CI met it by chance when the fresh lab's random port had been a full lab's."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale_host = kube_config.new_client_from_config(str(stale_for)).configuration.host
    stale_file = tmp_path / f"osrcp-{hashlib.md5(stale_host.encode()).hexdigest()}.json"
    full_client = DynamicClient(kube_config.new_client_from_config(str(full)), cache_file=str(stale_file))
    full_client.resources.get(api_version="kuadrant.io/v1", kind="AuthPolicy")
    assert "kuadrant.io" in stale_file.read_text()


@pytest.mark.slow
def test_preflight_on_fresh_profile_fails_with_fixes(fresh_lab, lab, monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(fresh_lab / "kubeconfig"))
    _plant_stale_discovery(full=lab.kubeconfig, stale_for=fresh_lab / "kubeconfig", monkeypatch=monkeypatch,
                           tmp_path=tmp_path)
    report = preflight.run(connect(start_lab=False), replicas=2).set_index("check")
    assert report.loc["GPU nodes", "status"] == "fail" and "GPU Operator" in report.loc["GPU nodes", "fix"]
    auth = report.loc["CRD AuthPolicy (kuadrant.io/v1)"]
    assert auth["status"] == "fail" and "rhcl-operator" in auth["fix"]
    gw = report.loc["Gateway openshift-ingress/openshift-ai-inference"]
    assert gw["status"] == "fail" and "openshift-default" in gw["fix"]
    assert report.loc["operator: NVIDIA GPU Operator", "status"] == "fail"
    # without Connectivity Link, an LLMInferenceService that leaves auth on is diagnosed with the workaround
    conn = connect(start_lab=False)
    obj = manifests.llm_inference_service("auth-on", "hf://Qwen/Qwen3-0.6B", workarounds=False)
    deploy.apply(conn, obj)
    row = doctor.diagnose_auth(conn, deploy.get(conn, "auth-on"))[0]
    assert row.status == "fail" and "enable-auth: 'false'" in row.fix
    with_workaround = deploy.apply(conn, manifests.llm_inference_service("auth-off", "hf://Qwen/Qwen3-0.6B"))
    assert doctor.diagnose_auth(conn, with_workaround) == []


def test_apply_is_idempotent_validated_and_delete_waits(conn):
    name = f"t-{uuid.uuid4().hex[:6]}"
    obj = manifests.llm_inference_service(
        name, "hf://Qwen/Qwen3-0.6B", model_name="Qwen/Qwen3-0.6B", gpu="g6.4xlarge"
    )
    first = deploy.apply(conn, obj)
    again = deploy.apply(conn, obj)
    assert first["metadata"]["uid"] == again["metadata"]["uid"]
    stored = deploy.get(conn, name)
    assert stored["metadata"]["annotations"]["security.opendatahub.io/enable-auth"] == "false"
    assert (
        "--kv-cache-usage-percentage-metric"
        in stored["spec"]["router"]["scheduler"]["template"]["containers"][0]["args"]
    )
    bad = manifests.llm_inference_service(f"{name}-x", "hf://Qwen/Qwen3-0.6B", tensor=2, gpu="g6.4xlarge")
    with pytest.raises(manifests.ManifestError, match="tensor=2"):
        deploy.apply(conn, bad)
    assert deploy.get(conn, f"{name}-x") is None  # nothing half-applied
    epp = child_name(name, names.SCHEDULER)  # the KServe controller creates it asynchronously: wait for it
    eventually(lambda: k8s.get(conn, "apps/v1", "Deployment", epp, conn.namespace), 60, f"Deployment {epp}")
    findings = doctor.run(conn, name, probe=False)
    assert findings.set_index("check").loc["EPP KV-cache metric", "status"] in ("pass", "warn")
    assert deploy.delete(conn, name, timeout_s=60) is True
    assert deploy.get(conn, name) is None
    assert k8s.pods(conn, conn.namespace, doctor.all_pods_selector(name)) == []
    assert deploy.delete(conn, name, timeout_s=5) is False


def test_doctor_reports_missing_service(conn):
    report = doctor.run(conn, "does-not-exist")
    assert not report.ok and "apply it first" in report["fix"].iloc[0]


# ------------------------------------------------------------------------------- LIBRARY_NEEDS 3, 4, 8
def test_pods_frame_and_role_selectors_show_where_replicas_landed(conn):
    name = f"pd-{uuid.uuid4().hex[:6]}"
    obj = manifests.llm_inference_service(name, "hf://Qwen/Qwen3-0.6B", model_name="Qwen/Qwen3-0.6B", replicas=2,
                                          prefill=manifests.Prefill(replicas=1), gpu="g6.4xlarge")  # fmt: skip
    deploy.apply(conn, obj)
    try:
        assert k8s.wait_for(lambda: len(k8s.pods(conn, conn.namespace, doctor.all_pods_selector(name))) == 4, 30)
        frame = deploy.pods_frame(conn, name)
        assert list(frame.columns) == list(deploy.POD_COLUMNS)
        assert sorted(frame["role"]) == ["decode", "decode", "prefill", "scheduler"]
        by_role = frame.groupby("role")
        assert list(by_role["gpus"].sum().items()) == [("decode", 2), ("prefill", 1), ("scheduler", 0)]
        assert frame["restarts"].eq(0).all() and frame["phase"].notna().all()
        placed = frame.dropna(subset=["node"])
        nodes = {n.metadata.name for n in conn.core.list_node().items}
        assert set(placed["node"]) <= nodes
        # each selector picks exactly its rows
        for role in ("decode", "prefill"):
            pods = {p["metadata"]["name"] for p in k8s.pods(conn, conn.namespace, doctor.role_selector(name, role))}
            assert pods == set(frame.loc[frame["role"] == role, "pod"])
        assert k8s.pods(conn, conn.namespace, doctor.role_selector(name, "both")) == []
        epp = {p["metadata"]["name"] for p in k8s.pods(conn, conn.namespace, doctor.scheduler_selector(name))}
        assert epp == set(frame.loc[frame["role"] == "scheduler", "pod"])
        with pytest.raises(ValueError, match="prefill, decode, both"):
            doctor.role_selector(name, "worker")
    finally:
        deploy.delete(conn, name, timeout_s=60)
    assert deploy.pods_frame(conn, name).empty


def test_ensure_namespace_creates_once(conn):
    name = f"ns-{uuid.uuid4().hex[:6]}"
    try:
        assert k8s.namespace_exists(conn, name) is False
        assert k8s.ensure_namespace(conn, name) is True
        assert conn.core.read_namespace(name).metadata.name == name
        assert k8s.ensure_namespace(conn, name) is False  # already there: nothing to do
        assert k8s.ensure_namespace(conn, "default") is False
    finally:
        conn.core.delete_namespace(name)
    with pytest.raises(ValueError, match="lower-case"):
        k8s.ensure_namespace(conn, "My_Project")

