"""The authentication/authorization seam (access.py): the default keeps the lab's one admin, every verb is
authorized before it runs (a denying authorizer plugged into create_app refuses with kube's wording and
stores nothing), and the reviews answer from the seam."""

from __future__ import annotations

import pytest
from labserver import start_api_server

from llmd_lab.lab.apiserver import reviews
from llmd_lab.lab.apiserver.access import (
    Access,
    Attributes,
    Decision,
    MastersAuthorizer,
    StaticTokenAuthenticator,
    UserInfo,
    default_access,
    lab_admin,
)

VIEWER = UserInfo("viewer", ("system:authenticated",))


class ReadOnly(MastersAuthorizer):
    """Masters may do everything; anyone else may get/list/watch, read discovery and create self-reviews
    (kube's system:basic-user role)."""

    def authorize(self, attrs: Attributes) -> Decision:
        if super().authorize(attrs).allowed or attrs.verb in ("get", "list", "watch") \
                or attrs.resource in ("selfsubjectreviews", "selfsubjectaccessreviews"):
            return Decision(True, "read-only")
        return Decision(False, "")


@pytest.fixture(scope="module")
def two_users():
    admin_token, viewer_token = "admin-token-0123456789", "viewer-token-0123456789"
    access = Access(StaticTokenAuthenticator({admin_token: lab_admin(), viewer_token: VIEWER}), ReadOnly())
    server = start_api_server(access=access)
    yield server, viewer_token
    server.stop()


def test_default_access_is_the_lab_admin_allowed_everything():
    access = default_access("tok")
    user = access.authenticator.authenticate("tok")
    assert user == lab_admin() and "system:masters" in user.groups
    assert access.authenticator.authenticate("other") is None
    assert access.authorizer.authorize(Attributes(user, "delete", "apps", "deployments", namespace="x")).allowed
    assert not access.authorizer.authorize(Attributes(VIEWER, "get", path="/api")).allowed


def test_denied_verb_is_403_with_kube_wording_and_nothing_stored(two_users):
    server, viewer = two_users
    headers = {"Authorization": f"Bearer {viewer}"}
    rv = server.store.resource_version
    r = server.http.post("/api/v1/namespaces/default/configmaps", headers=headers,
                         json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nope"}})
    assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
    assert r.json()["message"] == ('configmaps is forbidden: User "viewer" cannot create resource "configmaps" '
                                   'in API group "" in the namespace "default"')
    assert server.store.resource_version == rv
    listed = server.http.get("/apis/apps/v1/namespaces/default/deployments", headers=headers)
    assert listed.status_code == 200
    scale = server.http.put("/apis/apps/v1/namespaces/default/deployments/d/scale", headers=headers, json={})
    assert scale.status_code == 403 and 'cannot update resource "deployments/scale" in API group "apps"' \
        in scale.json()["message"]


def test_reviews_answer_for_the_requesting_user(two_users):
    server, viewer = two_users
    headers = {"Authorization": f"Bearer {viewer}"}
    who = server.http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", headers=headers,
                           json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert who.status_code == 201 and who.json()["status"]["userInfo"]["username"] == "viewer"
    can = server.http.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", headers=headers, json={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "delete", "resource": "pods", "namespace": "default"}}})
    assert can.status_code == 201 and can.json()["status"]["allowed"] is False


def test_review_answer_unit():
    access = default_access("tok")
    out = reviews.answer({"kind": "TokenReview", "spec": {"token": "tok"}}, lab_admin(), access)
    assert out["status"]["authenticated"] and out["status"]["user"]["username"] == "llmd-lab-admin"
