"""The RBAC authorizer against hand-computed cases: bindings, groups, service accounts, resourceNames,
subresources, nonResourceURLs, aggregation, and kube-apiserver's 403 wording."""

from __future__ import annotations

import pytest

from llmd_lab.lab.apiserver.access import forbidden
from llmd_lab.lab.apiserver.auth import attributes as at
from llmd_lab.lab.apiserver.auth.aggregation import aggregate_all
from llmd_lab.lab.apiserver.auth.authorizer import lab_authorizer
from llmd_lab.lab.apiserver.auth.bootstrap import bootstrap_objects
from llmd_lab.lab.apiserver.auth.policy import ObjectsPolicySource
from llmd_lab.lab.apiserver.auth.rbac import RBACAuthorizer
from llmd_lab.lab.apiserver.auth.user import UserInfo, master_user, oauth_user, service_account_user

R = "rbac.authorization.k8s.io"
USER1, USER2 = oauth_user("user1"), oauth_user("user2")


def role(name, rules, namespace=None, kind="Role", labels=None, aggregation=None):
    meta = {"name": name, **({"namespace": namespace} if namespace else {}), **({"labels": labels} if labels else {})}
    obj = {"apiVersion": f"{R}/v1", "kind": kind, "metadata": meta, "rules": rules}
    if aggregation:
        obj["aggregationRule"] = {"clusterRoleSelectors": aggregation}
    return obj


def binding(name, role_kind, role_name, subjects, namespace=None):
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{R}/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": R, "kind": role_kind, "name": role_name}, "subjects": subjects}


def lab_with(*extra):
    return lab_authorizer(ObjectsPolicySource([*bootstrap_objects(), *extra]))


def attendee_lab():
    """user1 and user2 each own a project with ClusterRole admin bound by a RoleBinding (OpenShift's template)."""
    return lab_with(*(binding("admin", "ClusterRole", "admin", [{"kind": "User", "apiGroup": R, "name": u}], u)
                      for u in ("user1", "user2")))


def allowed(authz, user, verb, group, resource, namespace="", name="", sub=""):
    return authz.authorize(at.resource(user, verb, group, resource, namespace=namespace, name=name,
                                       subresource=sub)).allowed


def test_attendee_admin_in_own_project_only():
    authz = attendee_lab()
    assert allowed(authz, USER1, "create", "serving.kserve.io", "llminferenceservices", "user1")
    assert not allowed(authz, USER1, "create", "serving.kserve.io", "llminferenceservices", "user2")
    assert not allowed(authz, USER1, "list", "serving.kserve.io", "llminferenceservices")  # cluster-wide list
    assert allowed(authz, USER1, "get", "", "pods", "user1", sub="log")
    assert not allowed(authz, USER1, "list", "", "nodes")
    # KServe's rhoai-3.0 roles give no write on LLMInferenceServiceConfig, so admin does not either
    assert not allowed(authz, USER1, "create", "serving.kserve.io", "llminferenceserviceconfigs", "user1")
    # admin may grant roles in its namespace (system:aggregate-to-admin) but read no status of Pods' writes
    assert allowed(authz, USER1, "create", R, "rolebindings", "user1")
    assert not allowed(authz, USER1, "update", "", "pods", "user1", sub="status")


def test_system_masters_and_cluster_admin():
    authz = attendee_lab()
    assert allowed(authz, master_user("boss"), "delete", "", "nodes", name="n1")
    crb = binding("instructor", "ClusterRole", "cluster-admin", [{"kind": "User", "apiGroup": R, "name": "teach"}])
    assert allowed(lab_with(crb), UserInfo("teach", ("system:authenticated",)), "list", "", "nodes")


def test_every_authenticated_user_may_discover_and_review_itself():
    authz = attendee_lab()
    stranger = oauth_user("nobody")
    assert authz.authorize(at.non_resource(stranger, "get", "/apis/serving.kserve.io/v1alpha1")).allowed
    assert authz.authorize(at.non_resource(stranger, "get", "/version")).allowed
    assert not authz.authorize(at.non_resource(stranger, "get", "/metrics")).allowed
    assert allowed(authz, stranger, "create", "authorization.k8s.io", "selfsubjectaccessreviews")
    assert allowed(authz, stranger, "list", "project.openshift.io", "projects")  # basic-user
    assert not allowed(authz, stranger, "create", "project.openshift.io", "projectrequests")  # no self-provisioner


def test_group_and_service_account_subjects():
    rb = binding("g", "ClusterRole", "view", [{"kind": "Group", "apiGroup": R, "name": "teachers"}], "shared")
    sa_rb = binding("sa", "ClusterRole", "edit", [{"kind": "ServiceAccount", "name": "wb"}], "user1")
    authz = lab_with(rb, sa_rb)
    assert allowed(authz, UserInfo("t", ("teachers",)), "list", "", "pods", "shared")
    assert not allowed(authz, UserInfo("t", ("students",)), "list", "", "pods", "shared")
    sa = service_account_user("user1", "wb")
    assert sa.name == "system:serviceaccount:user1:wb"
    assert sa.groups == ("system:serviceaccounts", "system:serviceaccounts:user1", "system:authenticated")
    assert allowed(authz, sa, "create", "apps", "deployments", "user1")
    assert not allowed(authz, service_account_user("user2", "wb"), "create", "apps", "deployments", "user1")


def test_resource_names_subresources_and_wildcards():
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["only-me"], "verbs": ["get"]},
             {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]},
             {"apiGroups": ["*"], "resources": ["leases"], "verbs": ["*"]}]
    authz = RBACAuthorizer(ObjectsPolicySource([
        role("r", rules, "ns"), binding("b", "Role", "r", [{"kind": "User", "name": "u"}], "ns")]))
    u = UserInfo("u")
    assert allowed(authz, u, "get", "", "configmaps", "ns", name="only-me")
    assert not allowed(authz, u, "get", "", "configmaps", "ns", name="other")
    assert not allowed(authz, u, "list", "", "configmaps", "ns")  # a list names no object
    assert allowed(authz, u, "update", "apps", "deployments", "ns", name="d", sub="scale")
    assert not allowed(authz, u, "update", "apps", "deployments", "ns", name="d")
    assert allowed(authz, u, "deletecollection", "coordination.k8s.io", "leases", "ns")
    assert not allowed(authz, u, "get", "", "configmaps", "other-ns", name="only-me")  # a Role is namespaced


def test_missing_role_is_the_deny_reason_and_allow_names_the_binding():
    authz = RBACAuthorizer(ObjectsPolicySource([
        binding("dangling", "ClusterRole", "gone", [{"kind": "User", "name": "u"}]),
        role("pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}], kind="ClusterRole"),
        binding("read", "ClusterRole", "pod-reader", [{"kind": "User", "name": "u"}], "ns")]))
    denied = authz.authorize(at.resource(UserInfo("u"), "list", "", "pods", namespace="ns"))
    assert not denied.allowed and denied.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'
    ok = authz.authorize(at.resource(UserInfo("u"), "get", "", "pods", namespace="ns", name="p"))
    assert ok.allowed and ok.reason == ('RBAC: allowed by RoleBinding "read/ns" of ClusterRole "pod-reader" '
                                        'to User "u"')


def test_aggregation_fills_roles_from_labels_in_name_order():
    roles = [role("agg", [], kind="ClusterRole", aggregation=[{"matchLabels": {"x": "true"}}]),
             role("b", [{"apiGroups": [""], "resources": ["b"], "verbs": ["get"]}], kind="ClusterRole",
                  labels={"x": "true"}),
             role("a", [{"apiGroups": [""], "resources": ["a"], "verbs": ["get"]},
                        {"apiGroups": [""], "resources": ["b"], "verbs": ["get"]}], kind="ClusterRole",
                  labels={"x": "true"}),
             role("c", [{"apiGroups": [""], "resources": ["c"], "verbs": ["get"]}], kind="ClusterRole")]
    assert aggregate_all(roles) == ["agg"]
    assert [r["resources"] for r in roles[0]["rules"]] == [["a"], ["b"]]  # a first, duplicate b once, no c


def test_bootstrap_admin_edit_view_aggregate_kserve_rules():
    by_name = {o["metadata"]["name"]: o for o in bootstrap_objects() if o["kind"] == "ClusterRole"}
    kserve_edit = by_name["kserve-edit"]["rules"][0]
    kserve_view = by_name["kserve-view"]["rules"][0]
    assert kserve_edit in by_name["edit"]["rules"] and kserve_edit in by_name["admin"]["rules"]
    assert kserve_view in by_name["view"]["rules"] and kserve_edit not in by_name["view"]["rules"]
    assert by_name["kserve-admin"]["rules"] == [kserve_edit]  # kserve-edit carries aggregate-to-kserve-admin


@pytest.mark.parametrize(("attrs", "message"), [
    (at.resource(USER1, "list", "", "nodes"),
     'nodes is forbidden: User "user1" cannot list resource "nodes" in API group "" at the cluster scope'),
    (at.resource(USER1, "get", "serving.kserve.io", "llminferenceservices", namespace="user2", name="m"),
     'llminferenceservices.serving.kserve.io "m" is forbidden: User "user1" cannot get resource '
     '"llminferenceservices" in API group "serving.kserve.io" in the namespace "user2"'),
    (at.resource(USER1, "get", "", "pods", namespace="user2", name="p", subresource="log"),
     'pods "p" is forbidden: User "user1" cannot get resource "pods/log" in API group "" in the namespace "user2"'),
    (at.non_resource(USER1, "get", "/metrics"), 'forbidden: User "user1" cannot get path "/metrics"'),
])
def test_forbidden_wording(attrs, message):
    authz = attendee_lab()
    decision = authz.authorize(attrs)
    assert not decision.allowed
    error = forbidden(attrs, decision.reason)
    assert (error.code, error.reason, error.message) == (403, "Forbidden", message)
    if attrs.is_resource_request:
        assert error.details["kind"] == attrs.resource and error.details.get("name", "") == attrs.name
