"""Escalation prevention (Covers + ConfirmNoEscalation wording) and the self-subject reviews, hand-computed."""

from __future__ import annotations

from llmd_lab.lab.apiserver.access import Access, StaticTokenAuthenticator
from llmd_lab.lab.apiserver.auth.authorizer import lab_authorizer
from llmd_lab.lab.apiserver.auth.bootstrap import bootstrap_objects
from llmd_lab.lab.apiserver.auth.escalation import escalation_allowed, escalation_message, missing_rules
from llmd_lab.lab.apiserver.auth.policy import ObjectsPolicySource
from llmd_lab.lab.apiserver.auth.user import UserInfo, master_user, oauth_user
from llmd_lab.lab.apiserver.reviews import answer

OWNED = [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments", "*/scale"], "verbs": ["get", "list"]},
         {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "b"], "verbs": ["*"]},
         {"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]}]


def test_covers_breaks_rules_down_to_one_verb_resource_and_name():
    assert missing_rules(OWNED, [{"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"],
                                  "verbs": ["list"]}]) == []
    assert missing_rules(OWNED, [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"],
                                  "verbs": ["delete"]}]) == []
    assert missing_rules(OWNED, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]) == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]  # unnamed is wider than a, b
    assert missing_rules(OWNED, [{"nonResourceURLs": ["/healthz/etcd", "/metrics"], "verbs": ["get"]}]) == [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert missing_rules(OWNED, [{"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["get"]}])


def test_escalation_message_matches_confirm_no_escalation():
    user = oauth_user("user1")
    missing = missing_rules(OWNED, [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])
    assert escalation_message(user, missing, []) == (
        'user "user1" (groups=["system:authenticated:oauth" "system:authenticated"]) is attempting to grant RBAC '
        'permissions not currently held:\n'
        '{APIGroups:[""], Resources:["nodes"], Verbs:["get" "list" "watch"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}')
    assert escalation_allowed(master_user("x")) and not escalation_allowed(user)


def _lab():
    rb = {"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
          "metadata": {"name": "admin", "namespace": "user1"},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
          "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "user1"}]}
    return lab_authorizer(ObjectsPolicySource([*bootstrap_objects(), rb]))


def _access(authz):
    return Access(StaticTokenAuthenticator({"t": oauth_user("user1")}), authz)


def _ssar(authz, user, **ra):
    return answer({"kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": ra}}, user, _access(authz))["status"]


def _ssrr(authz, user, namespace):
    return answer({"kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}}, user, _access(authz))["status"]


def test_access_review_answers_like_the_request_would():
    authz, user = _lab(), oauth_user("user1")
    yes = _ssar(authz, user, verb="create", group="serving.kserve.io", resource="llminferenceservices",
                namespace="user1")
    assert yes == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "admin/user1" of ClusterRole "admin" '
                                              'to User "user1"'}
    assert _ssar(authz, user, verb="create", group="serving.kserve.io", resource="llminferenceservices",
                 namespace="user2") == {"allowed": False}
    assert _ssar(authz, master_user("teach"), verb="list", resource="nodes") == {"allowed": True}


def test_rules_review_lists_what_applies_in_the_namespace():
    authz = _lab()
    mine = _ssrr(authz, oauth_user("user1"), "user1")
    theirs = _ssrr(authz, oauth_user("user1"), "user2")
    kserve = {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices", "llminferenceservices",
                                                                  "servingruntimes"],
              "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
    assert kserve in mine["resourceRules"] and kserve not in theirs["resourceRules"]
    assert mine["incomplete"] is False
    assert {"verbs": ["get"], "nonResourceURLs": ["/livez", "/readyz", "/healthz", "/version", "/version/"]} in \
        theirs["nonResourceRules"]
    broken = lab_authorizer(ObjectsPolicySource([{
        "kind": "ClusterRoleBinding", "metadata": {"name": "x"}, "subjects": [{"kind": "User", "name": "u"}],
        "roleRef": {"kind": "ClusterRole", "name": "missing"}}]))
    status = _ssrr(broken, UserInfo("u"), "n")
    assert status["incomplete"] is True and "missing" in status["evaluationError"]
