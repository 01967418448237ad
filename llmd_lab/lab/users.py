"""The lab's people: the instructor, attendees ``user1..userN`` and each project's workbench service account.

Each identity has its own bearer token (kept 0600 in ``$LLMD_LAB_HOME/identities.json``, never printed) and
its own kubeconfig (``kubeconfigs/<name>.kubeconfig``, one context). The cluster objects that make them real
are those an OpenShift AI workshop cluster has:

* a project per attendee (a Namespace with OpenShift's requester/display-name annotations and the
  ``opendatahub.io/dashboard`` label of a data science project) and a RoleBinding ``admin`` to ClusterRole
  ``admin`` for its owner, as OpenShift's default project template makes on ``oc new-project``;
* a workbench service account named after the Notebook (``workbench``) with exactly what RHOAI 3.0's
  odh-notebook-controller grants it: a ClusterRoleBinding ``<nb>-rbac-<ns>-auth-delegator`` to
  ``system:auth-delegator`` (kube-rbac-proxy mode; red-hat-data-services/kubeflow@rhoai-3.0
  components/odh-notebook-controller/controllers/notebook_kube_rbac_auth.go). Its other binding,
  ``elyra-pipelines-<nb>`` to Role ``ds-pipeline-user-access-dspa`` (notebook_rbac.go), is made only when a
  pipeline server exists in the project; the lab has none, so neither does the lab's workbench.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmd_lab.lab.apiserver.access import LAB_USER
from llmd_lab.lab.apiserver.auth.user import UserInfo, master_user, oauth_user, service_account_user
from llmd_lab.lab.home import LabPaths, ensure_token, write_private
from llmd_lab.lab.profiles import Profile

INSTRUCTOR = LAB_USER  # the lab's admin identity (system:masters), as before
WORKBENCH = "workbench"  # the Notebook's name, hence its service account's
DEFAULT_ATTENDEES = 1
MAX_ATTENDEES = 100
RBAC = "rbac.authorization.k8s.io"
_ATTENDEE = re.compile(r"^user([1-9][0-9]*)$")


@dataclass(frozen=True)
class LabIdentity:
    """One identity: its user, the namespace its kubeconfig starts in, and its token (never in repr)."""

    name: str
    user: UserInfo
    namespace: str
    token: str = field(repr=False)


def attendee_names(attendees: int) -> list[str]:
    """``user1`` … ``userN``; a clear error for a count the lab will not serve."""
    if not isinstance(attendees, int) or not 1 <= attendees <= MAX_ATTENDEES:
        raise ValueError(f"--attendees must be a whole number from 1 to {MAX_ATTENDEES} (got {attendees!r})")
    return [f"user{i}" for i in range(1, attendees + 1)]


def workbench_username(project: str) -> str:
    return service_account_user(project, WORKBENCH).name


def identities_file(paths: LabPaths) -> Path:
    return paths.home / "identities.json"


def _tokens(paths: LabPaths, names: list[str]) -> dict[str, str]:
    """Tokens per identity name, created once and kept across restarts (kubeconfigs stay valid)."""
    path = identities_file(paths)
    known: dict[str, str] = {}
    if path.exists():
        known = json.loads(path.read_text() or "{}")
    missing = [n for n in names if not known.get(n)]
    for name in missing:
        known[name] = secrets.token_urlsafe(32)
    if missing or not path.exists():
        write_private(path, json.dumps(known, indent=1) + "\n")
    return known


def lab_identities(paths: LabPaths, attendees: int = DEFAULT_ATTENDEES) -> list[LabIdentity]:
    """The instructor, then per attendee the person and the workbench service account of their project."""
    attendees_ = attendee_names(attendees)
    workbenches = [workbench_username(a) for a in attendees_]
    tokens = _tokens(paths, attendees_ + workbenches)
    out = [LabIdentity(INSTRUCTOR, master_user(INSTRUCTOR), "default", ensure_token(paths))]
    for attendee, workbench in zip(attendees_, workbenches, strict=True):
        out.append(LabIdentity(attendee, oauth_user(attendee), attendee, tokens[attendee]))
        out.append(LabIdentity(workbench, service_account_user(attendee, WORKBENCH), attendee, tokens[workbench]))
    return out


def kubeconfig_path(paths: LabPaths, name: str = INSTRUCTOR) -> Path:
    """Where the kubeconfig of identity ``name`` lives (the instructor's is the lab's ``kubeconfig``)."""
    if name == INSTRUCTOR:
        return paths.kubeconfig
    return paths.home / "kubeconfigs" / f"{name.replace(':', '_')}.kubeconfig"


def known_names(paths: LabPaths) -> list[str]:
    path = identities_file(paths)
    return [INSTRUCTOR, *json.loads(path.read_text() or "{}")] if path.exists() else [INSTRUCTOR]


def identity_kubeconfig(server: str, ca_data: str, identity: LabIdentity) -> str:
    """One cluster, one user, one context, named after the identity (JSON, which kubectl reads as YAML)."""
    context = f"{identity.namespace}/llmd-lab/{identity.name}"  # oc login's <project>/<server>/<user> shape
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "llmd-lab", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": identity.name, "user": {"token": identity.token}}],
        "contexts": [{"name": context, "context": {"cluster": "llmd-lab", "user": identity.name,
                                                   "namespace": identity.namespace}}],
        "current-context": context,
    }
    return json.dumps(config, indent=2) + "\n"


def write_kubeconfigs(paths: LabPaths, server: str, ca_data: str, identities: list[LabIdentity]) -> None:
    """Every non-instructor identity's kubeconfig, 0600 (the lab process writes the instructor's itself)."""
    directory = paths.home / "kubeconfigs"
    directory.mkdir(mode=0o700, exist_ok=True)
    for identity in identities:
        if identity.name != INSTRUCTOR:
            write_private(kubeconfig_path(paths, identity.name), identity_kubeconfig(server, ca_data, identity))


def project_objects(attendee: str) -> list[dict[str, Any]]:
    """An attendee's project: the Namespace, its admin RoleBinding, the workbench's service account and binding."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": attendee,
            "labels": {"opendatahub.io/dashboard": "true", "kubernetes.io/metadata.name": attendee},
            "annotations": {"openshift.io/requester": attendee, "openshift.io/display-name": attendee,
                            "openshift.io/description": f"{attendee}'s workshop project"}}},
        {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "admin", "namespace": attendee},
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "admin"},
         "subjects": [{"apiGroup": RBAC, "kind": "User", "name": attendee}]},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": WORKBENCH, "namespace": attendee, "labels": {"notebook-name": WORKBENCH}}},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {
            "name": f"{WORKBENCH}-rbac-{attendee}-auth-delegator",
            "labels": {"opendatahub.io/component": "notebook-controller", "opendatahub.io/namespace": attendee}},
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:auth-delegator"},
         "subjects": [{"kind": "ServiceAccount", "name": WORKBENCH, "namespace": attendee}]},
    ]


def resolve_name(paths: LabPaths, name: str | None) -> str:
    """The identity ``--user`` names: default the instructor; ``userK`` or its workbench account; else an error."""
    if not name or name in ("instructor", INSTRUCTOR):
        return INSTRUCTOR
    names = known_names(paths)
    if name in names:
        return name
    match = _ATTENDEE.match(name)
    hint = (f"the lab has {sum(1 for n in names if _ATTENDEE.match(n))} attendee(s); start it with "
            f"`llmd-lab up --attendees {match.group(1)}`" if match else
            f"choose one of: {', '.join(names)}")
    raise ValueError(f"no lab identity named {name!r}: {hint}")


def cluster_objects(profile: Profile | None, attendees: int) -> list[dict[str, Any]]:
    """Every attendee's project objects, plus OpenShift's ``self-provisioners`` binding unless the profile's
    ``openshift.selfProvisioners`` is false (a workshop cluster that stops attendees creating projects)."""
    from llmd_lab.lab.apiserver.auth.projects import self_provisioners_binding

    objects = [o for attendee in attendee_names(attendees) for o in project_objects(attendee)]
    openshift = (profile.openshift if profile is not None else None) or {}
    if openshift.get("selfProvisioners", True):
        objects.append(self_provisioners_binding())
    return objects
