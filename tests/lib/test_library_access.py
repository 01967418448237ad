"""The kit as an attendee: which identity connect() picks, the can-i summary, 403s in words, preflight's audiences."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from kubernetes.client.rest import ApiException

from llmd_lab import access, connection, k8s, preflight
from llmd_lab.connection import connect


def _forbidden(message: str) -> ApiException:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                           "reason": "Forbidden", "code": 403})  # fmt: skip
    return exc


# -------------------------------------------------------------------------------------------- 403 in words
def test_a_namespaced_403_names_the_permission_and_the_project_admin_who_grants_it():
    exc = access.explain(_forbidden('llminferenceservices.serving.kserve.io is forbidden: User "user1" cannot create '
                                    'resource "llminferenceservices" in API group "serving.kserve.io" in the namespace "user2"'))  # fmt: skip
    assert isinstance(exc, access.PermissionDenied) and exc.status == 403
    text = str(exc)
    assert "user1 may not create llminferenceservices (serving.kserve.io API group) in namespace user2" in text
    assert "an admin of project user2" in text
    assert exc.grant == "oc adm policy add-role-to-user edit user1 -n user2"


def test_a_cluster_scope_403_sends_the_attendee_to_the_instructor_with_the_command():
    exc = access.explain(_forbidden('nodes is forbidden: User "user1" cannot list resource "nodes" in API group "" '
                                    "at the cluster scope"))  # fmt: skip
    assert isinstance(exc, access.PermissionDenied)
    assert "cluster-wide" in str(exc) and "your instructor (a cluster-admin)" in str(exc)
    assert exc.grant == ("oc create clusterrole llmd-list-nodes --verb=list --resource=nodes && "
                         "oc adm policy add-cluster-role-to-user llmd-list-nodes user1")  # fmt: skip


def test_other_errors_pass_through_unchanged():
    plain = ApiException(status=500, reason="Internal Server Error")
    assert access.explain(plain) is plain
    odd = _forbidden("admission webhook denied the request")  # a 403 without RBAC wording stays as it is
    assert access.explain(odd) is odd


def test_helpers_raise_permission_denied_for_a_403():
    @access.explains_forbidden
    def list_nodes() -> None:
        raise _forbidden('nodes is forbidden: User "u" cannot list resource "nodes" in API group "" at the cluster scope')

    with pytest.raises(access.PermissionDenied, match="u may not list nodes"):
        list_nodes()


# ------------------------------------------------------------------------------------- identity choice
@pytest.fixture
def workbench(lab, tmp_path, monkeypatch):
    """A fake workbench pod: KUBERNETES_SERVICE_HOST/PORT and a mounted service account (the lab's token and CA)."""
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    cfg = yaml.safe_load(lab.kubeconfig.read_text())
    (sa / "token").write_text(cfg["users"][0]["user"]["token"])
    (sa / "ca.crt").write_bytes(base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]))
    (sa / "namespace").write_text("default")
    host, port = lab.url.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setattr(connection, "SA_DIR", sa)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setenv("HOME", str(tmp_path))
    return sa


def test_the_workbench_service_account_is_used_without_a_kubeconfig(workbench, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    conn = connect(start_lab=False)
    assert conn.source.startswith("in-cluster service account") and conn.namespace == "default"


def test_oc_login_in_the_workbench_terminal_wins_over_the_service_account(workbench, lab, monkeypatch, tmp_path):
    kube = Path(tmp_path) / ".kube"
    kube.mkdir()
    (kube / "config").write_text(lab.kubeconfig.read_text())  # what `oc login` writes
    monkeypatch.delenv("KUBECONFIG", raising=False)
    conn = connect("default", start_lab=False)
    assert conn.source.startswith(f"kubeconfig {kube / 'config'}")


def test_summary_says_who_you_are_and_what_you_can_do_without_a_secret(lab, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(lab.kubeconfig))
    conn = connect("default", start_lab=False)
    token = yaml.safe_load(lab.kubeconfig.read_text())["users"][0]["user"]["token"]
    text = conn.summary()
    assert f"user      : {conn.user}" in text and "can-i     : " in text
    assert conn.user != "?" and token not in text + conn._repr_html_()
    assert set(conn.identity.allowed) == {p.label for p in access.SUMMARY}


# ------------------------------------------------------------------------------------- preflight audiences
def test_attendee_preflight_asks_the_instructor_instead_of_failing(lab, monkeypatch):
    """An attendee (here: every cluster-wide review answered "no") gets ask rows with the command, and the
    project's own checks still run; nothing cluster-wide is listed."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(lab.kubeconfig))
    conn = connect("default", start_lab=False)
    real_review = access.access_review
    monkeypatch.setattr(access, "access_review",
                        lambda api, perm, ns: perm.namespaced and real_review(api, perm, ns))  # fmt: skip
    listed: list[tuple[str, str | None]] = []
    real_list = k8s.list_objects
    monkeypatch.setattr(k8s, "list_objects", lambda c, v, kind, namespace=None, label_selector=None: (
        listed.append((kind, namespace)) or real_list(c, v, kind, namespace, label_selector)))  # fmt: skip
    report = preflight.run(conn, audience="attendee").set_index("check")
    asks = report[report["status"] == preflight.ASK]
    assert {"datasciencecluster", "operators", "gpus", "presets", "cluster_queues"} <= set(asks.index)
    assert all(fix.startswith("ask your instructor to run: `oc ") for fix in asks["fix"])
    assert "oc get nodes" in asks.loc["gpus", "fix"]
    assert not (report["status"] == preflight.FAIL).any(), report
    assert all(ns == "default" for _, ns in listed), f"listed cluster-wide as an attendee: {listed}"
    assert "RBAC in default" in report.index and "Kueue LocalQueue" in report.index


def test_instructor_gets_every_check(lab, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(lab.kubeconfig))
    conn = connect("default", start_lab=False)
    assert conn.is_cluster_admin  # the lab's own kubeconfig is the instructor's
    report = preflight.run(conn)
    assert not (report["status"] == preflight.ASK).any()
    assert "GPU nodes" in set(report["check"])


def test_headless_raw_deployment_service_config_is_the_default_and_passes(monkeypatch):
    dsc = {"metadata": {"name": "default-dsc"}, "spec": {"components": {"kserve": {
        "managementState": "Managed", "defaultDeploymentMode": "RawDeployment", "rawDeploymentServiceConfig": "Headless"}}}}  # fmt: skip
    monkeypatch.setattr(k8s, "list_objects", lambda *a, **k: [dsc])
    [row] = preflight.check_datasciencecluster(None)  # type: ignore[arg-type]
    assert row.status == preflight.PASS and "rawDeploymentServiceConfig Headless" in row.evidence


def test_a_project_check_the_attendee_may_not_read_asks_with_the_grant(monkeypatch):
    def local_queue(conn, **kw):
        raise access.explain(_forbidden('localqueues.kueue.x-k8s.io is forbidden: User "user1" cannot list resource '
                                        '"localqueues" in API group "kueue.x-k8s.io" in the namespace "user1"'))

    conn = type("C", (), {"namespace": "user1", "user": "user1", "is_cluster_admin": False})()
    [row] = preflight._one(conn, local_queue, {}, preflight.ATTENDEE)  # type: ignore[arg-type]
    assert row.status == preflight.ASK and "user1 may not list localqueues" in row.evidence
    assert row.fix == "ask an admin of project user1 (its owner, or your instructor) to run: " \
                      "`oc adm policy add-role-to-user edit user1 -n user1`"
