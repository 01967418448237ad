"""Escalation checks on Role/binding writes, OpenShift projects per user, and the lab's identities and files."""

from __future__ import annotations

import json
import stat

import pytest

from llmd_lab.lab import users
from llmd_lab.lab.apiserver.auth import attributes as at
from llmd_lab.lab.apiserver.auth import projects
from llmd_lab.lab.apiserver.auth.authorizer import lab_authorizer
from llmd_lab.lab.apiserver.auth.bootstrap import bootstrap_objects
from llmd_lab.lab.apiserver.auth.escalation import check_binding_write, check_role_write, write_checker
from llmd_lab.lab.apiserver.auth.policy import ObjectsPolicySource
from llmd_lab.lab.apiserver.auth.rbac import RuleResolver
from llmd_lab.lab.apiserver.auth.user import master_user, oauth_user, service_account_user
from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.home import LabPaths

R = "rbac.authorization.k8s.io"


def _world(attendees=2):
    objects = [*bootstrap_objects()]
    for name in users.attendee_names(attendees):
        objects += users.project_objects(name)
    source = ObjectsPolicySource(objects)
    return lab_authorizer(source), RuleResolver(source), [o for o in objects if o["kind"] == "Namespace"]


def test_attendee_may_grant_admin_in_own_project_but_not_cluster_admin():
    authz, resolver, _ = _world()
    user1 = oauth_user("user1")
    view_for_friend = {"kind": "RoleBinding", "metadata": {"name": "friend", "namespace": "user1"},
                       "roleRef": {"apiGroup": R, "kind": "ClusterRole", "name": "view"},
                       "subjects": [{"kind": "User", "name": "user2"}]}
    check_binding_write(authz, user1, view_for_friend, resolver.role_ref_rules)
    root = {**view_for_friend, "roleRef": {"apiGroup": R, "kind": "ClusterRole", "name": "cluster-admin"}}
    with pytest.raises(ApiError) as exc:
        check_binding_write(authz, user1, root, resolver.role_ref_rules)
    assert exc.value.code == 403 and exc.value.message.startswith(
        'rolebindings.rbac.authorization.k8s.io "friend" is forbidden: user "user1" (groups=['
        '"system:authenticated:oauth" "system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:["*"], Resources:["*"], Verbs:["*"]}')
    check_binding_write(authz, master_user("teach"), root, resolver.role_ref_rules)


def test_attendee_role_writes_are_bounded_by_their_own_rules():
    authz, _, _ = _world()
    ok = {"kind": "Role", "metadata": {"name": "r", "namespace": "user1"},
          "rules": [{"apiGroups": ["serving.kserve.io"], "resources": ["llminferenceservices"], "verbs": ["get"]}]}
    check_role_write(authz, oauth_user("user1"), ok)
    with pytest.raises(ApiError) as exc:
        check_role_write(authz, oauth_user("user1"), {**ok, "metadata": {"name": "r", "namespace": "user2"}})
    assert '{APIGroups:["serving.kserve.io"], Resources:["llminferenceservices"], Verbs:["get"]}' in exc.value.message
    nodes = {**ok, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}
    with pytest.raises(ApiError):
        check_role_write(authz, oauth_user("user1"), nodes)


def test_projects_list_only_what_the_user_may_get():
    authz, _, namespaces = _world(3)
    names = [p["metadata"]["name"] for p in projects.visible_projects(authz, oauth_user("user2"), namespaces)]
    assert names == ["user2"]
    everyone = projects.visible_projects(authz, master_user("teach"), namespaces)
    assert [p["metadata"]["name"] for p in everyone] == ["user1", "user2", "user3"]
    project = everyone[0]
    assert project["kind"] == "Project" and project["apiVersion"] == "project.openshift.io/v1"
    assert project["metadata"]["annotations"]["openshift.io/requester"] == "user1"
    assert project["spec"] == {"finalizers": ["kubernetes"]} and project["status"] == {"phase": "Active"}


def test_project_request_makes_namespace_and_admin_binding_and_checks_names():
    ns, rb = projects.request_objects({"metadata": {"name": "demo"}, "displayName": "Demo"}, oauth_user("user1"))
    assert ns["metadata"]["annotations"] == {"openshift.io/requester": "user1", "openshift.io/display-name": "Demo",
                                             "openshift.io/description": ""}
    assert rb["roleRef"]["name"] == "admin" and rb["subjects"][0]["name"] == "user1"
    with pytest.raises(ApiError) as exc:
        projects.request_objects({"metadata": {"name": "Bad_Name"}}, oauth_user("user1"))
    assert exc.value.code == 422 and "RFC 1123" in exc.value.message
    with pytest.raises(ApiError) as exc:
        projects.request_objects({"metadata": {"name": "openshift-mine"}}, oauth_user("user1"))
    assert exc.value.code == 403


def test_identities_tokens_and_kubeconfigs(tmp_path):
    paths = LabPaths(tmp_path)
    people = users.lab_identities(paths, 2)
    assert [p.name for p in people] == ["llmd-lab-admin", "user1", "system:serviceaccount:user1:workbench",
                                        "user2", "system:serviceaccount:user2:workbench"]
    assert len({p.token for p in people}) == 5 and all(p.token not in repr(p) for p in people)
    assert users.lab_identities(paths, 2)[1].token == people[1].token  # kept across restarts
    users.write_kubeconfigs(paths, "https://127.0.0.1:1", "Q0E=", people)
    path = users.kubeconfig_path(paths, "user1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = json.loads(path.read_text())
    assert len(config["contexts"]) == 1 and config["contexts"][0]["context"]["namespace"] == "user1"
    assert config["users"][0]["user"]["token"] == people[1].token
    assert users.resolve_name(paths, None) == "llmd-lab-admin"
    with pytest.raises(ValueError, match="--attendees 7"):
        users.resolve_name(paths, "user7")
    with pytest.raises(ValueError, match="from 1 to"):
        users.attendee_names(0)


def test_workbench_account_gets_exactly_what_rhoai_gives():
    authz, _, _ = _world(1)
    sa = service_account_user("user1", "workbench")
    assert authz.authorize(at.resource(sa, "create", "authentication.k8s.io", "tokenreviews")).allowed
    assert not authz.authorize(at.resource(sa, "create", "serving.kserve.io", "llminferenceservices",
                                           namespace="user1")).allowed
    assert not authz.authorize(at.resource(sa, "list", "", "pods", namespace="user1")).allowed


def test_write_checker_skips_role_updates_that_keep_the_rules():
    wide = {"apiVersion": f"{R}/v1", "kind": "Role", "metadata": {"name": "wide", "namespace": "user1"},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}
    objects = [*bootstrap_objects(), *users.project_objects("user1"), wide]
    source = ObjectsPolicySource(objects)
    check = write_checker(lab_authorizer(source), source)
    check(oauth_user("user1"), {**wide, "metadata": {**wide["metadata"], "labels": {"a": "b"}}})  # rules unchanged
    with pytest.raises(ApiError):
        check(oauth_user("user1"), {**wide, "rules": [*wide["rules"], {"apiGroups": [""], "resources": ["nodes"],
                                                                      "verbs": ["get"]}]})
    check(oauth_user("user1"), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})  # not RBAC
