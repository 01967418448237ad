"""Who am I and what may I do: SelfSubjectReview (``kubectl auth whoami``, ``connect().user``) names the lab's
admin user and groups, and access reviews answer for that user, with kube-apiserver's validation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import kubernetes
import pytest
from kubernetes.client.rest import ApiException
from labserver import start_api_server

import llmd_lab

ADMIN = "llmd-lab-admin"
GROUPS = {"system:masters", "system:authenticated"}
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed for the test server's TLS")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("whoami")
    server = start_api_server(tls_dir=home)
    kubeconfig = server.kubeconfig(home / "kubeconfig")
    yield server, kubeconfig, home
    server.stop()


def test_self_subject_review_names_the_lab_admin(api_client):
    review = kubernetes.client.AuthenticationV1Api(api_client).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert review.kind == "SelfSubjectReview" and review.status.user_info.username == ADMIN
    assert set(review.status.user_info.groups) == GROUPS


def test_self_subject_review_is_create_only_and_discoverable(api_server):
    resources = api_server.request("GET", "/apis/authentication.k8s.io/v1").json()["resources"]
    ssr = next(r for r in resources if r["name"] == "selfsubjectreviews")
    assert ssr["kind"] == "SelfSubjectReview" and ssr["verbs"] == ["create"] and not ssr["namespaced"]
    listed = api_server.request("GET", "/apis/authentication.k8s.io/v1/selfsubjectreviews")
    assert listed.status_code == 405


def test_token_review_answers_with_the_same_identity(api_client, api_server):
    authn = kubernetes.client.AuthenticationV1Api(api_client)
    good = authn.create_token_review({"spec": {"token": api_server.token}})
    assert good.status.authenticated and good.status.user.username == ADMIN and set(good.status.user.groups) == GROUPS
    bad = authn.create_token_review({"spec": {"token": "not-the-token"}})
    assert not bad.status.authenticated and bad.status.user is None


def test_access_reviews_allow_the_admin_and_validate_like_kube_apiserver(api_client):
    authz = kubernetes.client.AuthorizationV1Api(api_client)
    allowed = authz.create_self_subject_access_review({"spec": {"resourceAttributes": {
        "verb": "create", "group": "serving.kserve.io", "resource": "llminferenceservices", "namespace": "x"}}})
    assert allowed.status.allowed and ADMIN in allowed.status.reason and "system:masters" in allowed.status.reason
    non_resource = authz.create_self_subject_access_review({"spec": {"nonResourceAttributes": {
        "verb": "get", "path": "/metrics"}}})
    assert non_resource.status.allowed
    for spec, field in (({}, "spec.resourceAttributes"), ({"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {
            "verb": "get", "path": "/"}}, "spec.nonResourceAttributes")):
        with pytest.raises(ApiException) as exc:
            authz.create_self_subject_access_review({"spec": spec})
        assert exc.value.status == 422 and field in json.loads(exc.value.body)["message"]
    with pytest.raises(ApiException) as exc:
        authz.create_self_subject_rules_review({"spec": {}})
    assert exc.value.status == 400 and "no namespace on request" in exc.value.body


@needs_openssl
def test_connect_reports_the_lab_user(tls_server):
    _, kubeconfig, _ = tls_server
    conn = llmd_lab.connect("default", kubeconfig=kubeconfig, allow_lab=False)
    assert conn.user == ADMIN


@needs_openssl
@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_kubectl_auth_whoami(tls_server):
    _, kubeconfig, home = tls_server
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
    out = subprocess.run(["kubectl", "--cache-dir", str(home / "cache"), "auth", "whoami", "-o", "json"], env=env,
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["status"]["userInfo"]
    assert info["username"] == ADMIN and set(info["groups"]) == GROUPS
    table = subprocess.run(["kubectl", "--cache-dir", str(home / "cache"), "auth", "whoami"], env=env,
                           capture_output=True, text=True, timeout=30, check=False)
    assert table.returncode == 0 and ADMIN in table.stdout and "system:masters" in table.stdout, table.stderr
