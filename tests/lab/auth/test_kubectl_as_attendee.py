"""A lab with two attendees, driven with the machine's kubectl and the workbench command: what an attendee
may see and do, in kube-apiserver's words (issue 12, "Done means")."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from labhelpers import api_client, eventually, run_cli, running_lab

pytestmark = [
    pytest.mark.slow,
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("attendees"), "--attendees", "2") as running:
        yield running


def kubeconfig_of(lab, user: str) -> str:
    result = run_cli(lab.home, "kubeconfig", "--user", user)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def kubectl(lab, user: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**lab.env, "KUBECONFIG": kubeconfig_of(lab, user)}
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=60, input=stdin,
                          check=False)


def test_get_nodes_is_refused_in_kube_apiservers_words(lab):
    result = kubectl(lab, "user1", "get", "nodes")
    assert result.returncode != 0
    assert ('Error from server (Forbidden): nodes is forbidden: User "user1" cannot list resource "nodes" in API '
            'group "" at the cluster scope') in result.stderr
    assert kubectl(lab, "llmd-lab-admin", "get", "nodes").returncode == 0


def test_can_i_create_llminferenceservices_only_in_own_project(lab):
    mine = kubectl(lab, "user1", "auth", "can-i", "create", "llminferenceservices", "-n", "user1")
    theirs = kubectl(lab, "user1", "auth", "can-i", "create", "llminferenceservices", "-n", "user2")
    assert (mine.returncode, mine.stdout.strip()) == (0, "yes")
    assert (theirs.returncode, theirs.stdout.strip()) == (1, "no")
    whoami = kubectl(lab, "user1", "auth", "whoami", "-o", "json")
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info == {"username": "user1", "groups": ["system:authenticated:oauth", "system:authenticated"]}


def test_another_attendees_services_are_invisible(lab):
    service = json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "secret-model"},
                          "spec": {"ports": [{"port": 8000}]}})
    created = kubectl(lab, "user2", "apply", "-n", "user2", "-f", "-", stdin=service)
    assert created.returncode == 0, created.stderr
    listed = kubectl(lab, "user1", "get", "services", "-n", "user2")
    assert 'cannot list resource "services" in API group "" in the namespace "user2"' in listed.stderr
    got = kubectl(lab, "user1", "get", "service", "secret-model", "-n", "user2")
    assert 'services "secret-model" is forbidden: User "user1" cannot get resource "services"' in got.stderr
    isvcs = kubectl(lab, "user1", "get", "llminferenceservices", "-A")
    assert ('cannot list resource "llminferenceservices" in API group "serving.kserve.io" at the cluster scope'
            in isvcs.stderr)
    assert kubectl(lab, "user1", "get", "services", "-n", "user1").returncode == 0


def test_projects_list_what_each_user_may_see_and_requests_make_new_ones(lab):
    def projects(user):
        result = kubectl(lab, user, "get", "projects", "-o", "json")
        assert result.returncode == 0, result.stderr
        return [p["metadata"]["name"] for p in json.loads(result.stdout)["items"]]

    assert projects("user1") == ["user1"]
    assert {"user1", "user2", "default"} <= set(projects("llmd-lab-admin"))
    request = json.dumps({"apiVersion": "project.openshift.io/v1", "kind": "ProjectRequest",
                          "metadata": {"name": "user2-scratch"}, "displayName": "Scratch"})
    made = kubectl(lab, "user2", "create", "-f", "-", stdin=request)
    assert made.returncode == 0, made.stderr
    assert projects("user2") == ["user2", "user2-scratch"] and projects("user1") == ["user1"]
    again = kubectl(lab, "user1", "create", "-f", "-", stdin=request)
    assert 'project.project.openshift.io "user2-scratch" already exists' in again.stderr


def test_attendees_cannot_grant_what_they_lack(lab):
    refused = kubectl(lab, "user1", "create", "rolebinding", "root", "--clusterrole=cluster-admin", "--user=user2",
                      "-n", "user1")
    assert ('rolebindings.rbac.authorization.k8s.io "root" is forbidden: user "user1" (groups=['
            '"system:authenticated:oauth" "system:authenticated"]) is attempting to grant RBAC permissions not '
            'currently held:') in refused.stderr
    shared = kubectl(lab, "user1", "create", "rolebinding", "peek", "--clusterrole=view", "--user=user2", "-n", "user1")
    assert shared.returncode == 0, shared.stderr
    assert kubectl(lab, "user2", "get", "pods", "-n", "user1").returncode == 0


def test_workbench_account_has_only_rhoais_rights_and_kubeconfigs_are_private(lab):
    sa = "system:serviceaccount:user1:workbench"
    assert kubectl(lab, sa, "auth", "can-i", "create", "tokenreviews.authentication.k8s.io").stdout.strip() == "yes"
    assert kubectl(lab, sa, "auth", "can-i", "create", "llminferenceservices", "-n", "user1").stdout.strip() == "no"
    for user in ("user1", sa):
        path = Path(kubeconfig_of(lab, user))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = json.loads((lab.home / "identities.json").read_text()).values()
    listing = run_cli(lab.home, "kubeconfig", "--user", "user1")
    assert not any(t in listing.stdout + listing.stderr for t in tokens)


def _can_mount() -> bool:
    return os.geteuid() == 0 or Path("/var/run/secrets/kubernetes.io/serviceaccount").is_dir()


@pytest.mark.skipif(not _can_mount() or shutil.which("unshare") is None,
                    reason="needs root or an existing /var/run/secrets/kubernetes.io/serviceaccount, and unshare")
def test_workbench_sees_the_in_cluster_service_account(lab):
    probe = (
        "import json, os, kubernetes\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "kubernetes.config.load_incluster_config()\n"
        "me = kubernetes.client.AuthenticationV1Api().create_self_subject_review("
        "{'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'})\n"
        "print(json.dumps({'kubeconfig': os.environ.get('KUBECONFIG'), 'files': sorted(os.listdir(sa)),"
        " 'namespace': open(sa + '/namespace').read(), 'user': me.status.user_info.username,"
        " 'login': open(os.path.expanduser('~/.kube/config')).read().count('user1')}))\n"
    )
    result = run_cli(lab.home, "workbench", "--user", "user1", "--", sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["kubeconfig"] is None and seen["files"] == ["ca.crt", "namespace", "token"]
    assert seen["namespace"] == "user1" and seen["user"] == "system:serviceaccount:user1:workbench"
    assert seen["login"] > 0  # the attendee's `oc login` kubeconfig is in the workbench home


def test_aggregation_controller_extends_view_for_attendees(lab):
    # no RHOAI 3.0 or OpenShift role we could confirm aggregates InferencePools into admin/edit/view
    denied = kubectl(lab, "user1", "auth", "can-i", "list", "inferencepools.inference.networking.k8s.io", "-n", "user1")
    assert denied.stdout.strip() == "no"
    role = json.dumps({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                       "metadata": {"name": "pools-view", "labels": {
                           "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                       "rules": [{"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"], "verbs": ["list"]}]})
    assert kubectl(lab, "llmd-lab-admin", "apply", "-f", "-", stdin=role).returncode == 0

    def allowed():
        answer = kubectl(lab, "user1", "auth", "can-i", "list", "inferencepools.inference.networking.k8s.io", "-n", "user1")
        return answer.stdout.strip() == "yes"

    eventually(allowed, 30, "view -> edit -> admin to aggregate pools-view for user1")
    admin = json.loads(kubectl(lab, "llmd-lab-admin", "get", "clusterrole", "admin", "-o", "json").stdout)
    assert {"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"], "verbs": ["list"]} in admin["rules"]


def test_up_refuses_another_attendee_count_while_running(lab):
    same = run_cli(lab.home, "up")
    assert same.returncode == 0 and "already running" in same.stdout
    other = run_cli(lab.home, "up", "--attendees", "3")
    assert other.returncode == 1 and "a lab with 2 attendee(s) is already running" in other.stderr
    assert "llmd-lab down" in other.stderr


def test_a_named_list_is_authorized_for_that_name(lab):
    # the subject is user2's workbench account, which has no other rights in user1
    grant = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "user1"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "settings-reader", "namespace": "user1"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "settings-reader", "namespace": "user1"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "settings-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "workbench", "namespace": "user2"}]}]})
    applied = kubectl(lab, "user1", "apply", "-f", "-", stdin=grant)
    assert applied.returncode == 0, applied.stderr
    with api_client(Path(kubeconfig_of(lab, "system:serviceaccount:user2:workbench"))) as api:
        core = client.CoreV1Api(api)
        named = core.list_namespaced_config_map("user1", field_selector="metadata.name=settings")
        assert [c.metadata.name for c in named.items] == ["settings"]
        with pytest.raises(ApiException) as exc:
            core.list_namespaced_config_map("user1")
        assert exc.value.status == 403
