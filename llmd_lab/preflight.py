"""Is this cluster ready for llm-d on OpenShift AI 3.0? Checks with evidence and the fix.

Each check reads the cluster through the API (the same calls as ``oc get``) and returns a row:
``check``, ``status`` (pass / warn / fail), ``evidence`` (what was seen) and ``fix`` (a command or a
pointer). :func:`run` returns them as a :class:`CheckTable` — a pandas DataFrame that shows colour-coded
in a notebook. The list follows the workshop guides' prerequisites (OpenShift ≥ 4.19, the
DataScienceCluster in RawDeployment mode, the operators, the ``kuadrant.io/v1`` AuthPolicy CRD,
the InferencePool API RHOAI 3.0's KServe needs, GPUs, the inference Gateway, Kueue, RBAC).

Two audiences. The instructor (cluster-admin) gets every check. An attendee cannot read cluster-scoped
objects (nodes, operators, the DataScienceCluster): those checks become ``ask`` rows naming the exact
command the instructor runs, not failures. Checks of the attendee's own project (quota, LocalQueue, the
Kueue label, RBAC there, their services) run for everyone.

Why one module of ~500 lines: it is the list of checks, one short function each, plus the table they fill;
splitting the list would only scatter what notebook 01 shows as one table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from kubernetes.client.rest import ApiException

from llmd_lab import access, k8s
from llmd_lab.connection import Connection

PASS, WARN, FAIL, ASK = "pass", "warn", "fail", "ask your instructor"
_COLOURS = {PASS: "#d4edda", WARN: "#fff3cd", FAIL: "#f8d7da", ASK: "#d6e9f8"}
ATTENDEE, INSTRUCTOR = "attendee", "instructor"
MIN_OPENSHIFT = (4, 19)
GATEWAY_NS, GATEWAY_NAME, GATEWAY_CLASS = "openshift-ingress", "openshift-ai-inference", "openshift-default"
PRESETS = ("kserve-config-llm-template", "kserve-config-llm-scheduler", "kserve-config-llm-router-route")
OPERATORS = (
    # (CSV name prefix, what it is, required?, fix)
    ("rhods-operator", "Red Hat OpenShift AI", True, "install OpenShift AI 3.0 from OperatorHub"),
    ("rhcl-operator", "Red Hat Connectivity Link (AuthPolicy)", True,
     "install rhcl-operator from redhat-operators, then restart odh-model-controller and kserve-controller-manager pods"),
    ("leader-worker-set", "LeaderWorkerSet (multi-node only)", False,
     "install the Leader Worker Set operator from OperatorHub (needed for multi-node / worker specs)"),
    ("kueue-operator", "Red Hat build of Kueue", False, "install the Red Hat build of Kueue from OperatorHub"),
    ("cert-manager-operator", "cert-manager", True, "install cert-manager Operator for Red Hat OpenShift"),
    ("nfd", "Node Feature Discovery", True, "install Node Feature Discovery and create a NodeFeatureDiscovery instance"),
    ("gpu-operator-certified", "NVIDIA GPU Operator", True, "install the NVIDIA GPU Operator and create a ClusterPolicy"),
)  # fmt: skip


@dataclass
class Check:
    check: str
    status: str
    evidence: str
    fix: str = ""


class CheckTable(pd.DataFrame):
    """A DataFrame of checks (``check``, ``status``, ``evidence``, ``fix``) that renders colour-coded."""

    @property
    def _constructor(self) -> type[CheckTable]:
        return CheckTable

    @property
    def ok(self) -> bool:
        """No check failed."""
        return "status" in self and not (self["status"] == FAIL).any()

    def failed(self) -> CheckTable:
        return self[self["status"] == FAIL]

    def styled(self) -> Any:
        """A pandas Styler with pass/warn/fail colours (what the notebook shows)."""

        def colour(row: pd.Series) -> list[str]:
            return [f"background-color: {_COLOURS.get(row.get('status'), '')}" for _ in row]

        return self.style.apply(colour, axis=1).set_properties(
            **{"text-align": "left", "white-space": "pre-wrap"}
        )

    def _repr_html_(self) -> str | None:
        return self.styled().to_html()


def table(checks: Iterable[Check]) -> CheckTable:
    return CheckTable([c.__dict__ for c in checks], columns=["check", "status", "evidence", "fix"])


# ------------------------------------------------------------------------------------------------ checks
def _version_tuple(v: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v or "")[:2])


def check_api(conn: Connection) -> list[Check]:
    where = f"{conn.kind} {conn.platform_version or ''}".strip()
    evidence = f"{conn.server} answered; Kubernetes {conn.version}; {where}; user {conn.user}"
    if conn.platform_version is None:
        if conn.kind == "Kubernetes":
            return [Check("API and OpenShift version", WARN, evidence + "; not OpenShift",
                          "OpenShift AI 3.0 needs OpenShift ≥ 4.19; plain Kubernetes lacks Routes and the operators")]  # fmt: skip
        return [Check("API and OpenShift version", WARN if conn.is_cluster_admin else ASK,
                      evidence + "; ClusterVersion unreadable",
                      "ask your instructor to run: `oc get clusterversion version -o jsonpath='{.status.desired.version}'`")]  # fmt: skip
    if _version_tuple(conn.platform_version) < MIN_OPENSHIFT:
        return [Check("API and OpenShift version", FAIL, evidence,
                      f"upgrade OpenShift to ≥ {MIN_OPENSHIFT[0]}.{MIN_OPENSHIFT[1]} (RHOAI 3.0 requirement)")]  # fmt: skip
    return [Check("API and OpenShift version", PASS, evidence)]


def check_datasciencecluster(conn: Connection) -> list[Check]:
    dscs = k8s.list_objects(conn, "datasciencecluster.opendatahub.io/v1", "DataScienceCluster")
    if not dscs:
        return [Check("DataScienceCluster", FAIL, "no DataScienceCluster found",
                      "install OpenShift AI and create a DataScienceCluster (`oc get dsc`)")]  # fmt: skip
    dsc = dscs[0]
    ks = dsc.get("spec", {}).get("components", {}).get("kserve", {}) or {}
    seen = (f"{dsc['metadata']['name']}: kserve {ks.get('managementState')}, mode {ks.get('defaultDeploymentMode')}, "
            f"rawDeploymentServiceConfig {ks.get('rawDeploymentServiceConfig')}")  # fmt: skip
    problems = []
    if ks.get("managementState") != "Managed":
        problems.append("spec.components.kserve.managementState: Managed")
    if ks.get("defaultDeploymentMode") not in (None, "RawDeployment"):
        problems.append("spec.components.kserve.defaultDeploymentMode: RawDeployment")
    # rawDeploymentServiceConfig (default Headless) shapes InferenceService Services only: KServe's llmisvc
    # controller always renders a ClusterIP workload Service (workload.go), so either value is fine here
    if problems:
        return [
            Check(
                "DataScienceCluster",
                FAIL,
                seen,
                f"`oc edit dsc {dsc['metadata']['name']}` and set " + "; ".join(problems),
            )
        ]
    return [Check("DataScienceCluster", PASS, seen)]


def check_dsci(conn: Connection) -> list[Check]:
    items = k8s.list_objects(conn, "dscinitialization.opendatahub.io/v1", "DSCInitialization")
    if not items:
        return [
            Check(
                "DSCInitialization",
                WARN,
                "no DSCInitialization found",
                "OpenShift AI creates default-dsci on install",
            )
        ]
    mesh = (items[0].get("spec", {}).get("serviceMesh") or {}).get("managementState", "Removed (absent)")
    if not str(mesh).startswith("Removed"):
        return [Check("DSCInitialization", FAIL, f"serviceMesh.managementState {mesh}",
                      f"`oc edit dsci {items[0]['metadata']['name']}`: set spec.serviceMesh.managementState: Removed "
                      "(llm-d on RHOAI 3.0 uses Gateway API, not Service Mesh 2)")]  # fmt: skip
    return [Check("DSCInitialization", PASS, f"serviceMesh {mesh}")]


def check_operators(conn: Connection, *, multi_node: bool = False) -> list[Check]:
    csvs = k8s.list_objects(conn, "operators.coreos.com/v1alpha1", "ClusterServiceVersion")
    out = []
    for prefix, what, required, fix in OPERATORS:
        found = [c for c in csvs if c["metadata"]["name"].startswith(prefix)]
        needed = required or (prefix == "leader-worker-set" and multi_node)
        if not found:
            out.append(Check(f"operator: {what}", FAIL if needed else WARN, f"no CSV named {prefix}*", fix))
            continue
        csv = found[0]
        phase = csv.get("status", {}).get("phase", "?")
        ev = f"{csv['metadata']['name']} in {csv['metadata'].get('namespace')}: {phase}"
        out.append(Check(f"operator: {what}", PASS if phase == "Succeeded" else FAIL, ev,
                         "" if phase == "Succeeded" else f"`oc describe csv {csv['metadata']['name']} -n "
                         f"{csv['metadata'].get('namespace')}` to see why it is {phase}"))  # fmt: skip
    return out


def check_crds(conn: Connection) -> list[Check]:
    out = []
    wanted = [
        ("serving.kserve.io/v1alpha1", "LLMInferenceService", "enable KServe in the DataScienceCluster (RHOAI 3.0)"),
        ("serving.kserve.io/v1alpha1", "LLMInferenceServiceConfig", "enable KServe in the DataScienceCluster (RHOAI 3.0)"),
        ("inference.networking.x-k8s.io/v1alpha2", "InferencePool",
         "RHOAI 3.0's KServe creates inference.networking.x-k8s.io/v1alpha2 InferencePools: reinstall the RHOAI 3.0 "
         "CRD bundle (the k8s.io/v1 API alone is not enough)"),
        ("gateway.networking.k8s.io/v1", "Gateway", "Gateway API CRDs come with OpenShift ≥ 4.19"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", "Gateway API CRDs come with OpenShift ≥ 4.19"),
    ]  # fmt: skip
    for api_version, kind, fix in wanted:
        ok = k8s.has_kind(conn, api_version, kind)
        out.append(
            Check(
                f"CRD {kind} ({api_version})",
                PASS if ok else FAIL,
                "served" if ok else "not served",
                "" if ok else fix,
            )
        )
    v1 = k8s.has_kind(conn, "inference.networking.k8s.io/v1", "InferencePool")
    out.append(Check("CRD InferencePool (inference.networking.k8s.io/v1)", PASS if v1 else WARN,
                     "served" if v1 else "not served", "" if v1 else "only needed by newer llm-d releases"))  # fmt: skip
    if k8s.has_kind(conn, "kuadrant.io/v1", "AuthPolicy"):
        out.append(Check("CRD AuthPolicy (kuadrant.io/v1)", PASS, "served"))
    elif k8s.has_kind(conn, "kuadrant.io/v1beta2", "AuthPolicy"):
        out.append(Check("CRD AuthPolicy (kuadrant.io/v1)", FAIL, "only the community kuadrant.io/v1beta2 AuthPolicy is served",
                         "uninstall community Kuadrant and install Red Hat Connectivity Link (rhcl-operator), which serves kuadrant.io/v1"))  # fmt: skip
    else:
        out.append(Check("CRD AuthPolicy (kuadrant.io/v1)", FAIL, "authpolicies.kuadrant.io not served",
                         "install Red Hat Connectivity Link (rhcl-operator): KServe validates the Gateway against it; then "
                         "`oc delete pod -n redhat-ods-applications -l app=odh-model-controller` and "
                         "`-l control-plane=kserve-controller-manager`"))  # fmt: skip
    lws = k8s.has_kind(conn, "leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
    out.append(Check("CRD LeaderWorkerSet", PASS if lws else WARN, "served" if lws else "not served",
                     "" if lws else "install the LeaderWorkerSet operator before using nodes > 1 (multi-node)"))  # fmt: skip
    return out


def check_presets(conn: Connection) -> list[Check]:
    found = {c["metadata"]["name"]: c["metadata"].get("namespace")
             for c in k8s.list_objects(conn, "serving.kserve.io/v1alpha1", "LLMInferenceServiceConfig")}  # fmt: skip
    missing = [p for p in PRESETS if p not in found]
    if missing:
        return [Check("KServe presets (LLMInferenceServiceConfig)", FAIL, f"missing: {', '.join(missing)}",
                      "the KServe llmisvc controller installs them; check `oc get llminferenceserviceconfig -A` and the "
                      "kserve-controller-manager logs")]  # fmt: skip
    return [Check("KServe presets (LLMInferenceServiceConfig)", PASS,
                  f"{len(found)} presets, e.g. {PRESETS[0]} in {found[PRESETS[0]]}")]  # fmt: skip


def gpu_inventory(conn: Connection) -> pd.DataFrame:
    """GPU nodes: name, instance type, product, allocatable GPUs, GPUs requested by pods, free now."""
    used: dict[str, int] = {}
    for pod in k8s.list_objects(conn, "v1", "Pod"):
        node = pod.get("spec", {}).get("nodeName")
        if not node or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for c in pod["spec"].get("containers", []) or []:
            req = ((c.get("resources") or {}).get("requests") or {}).get("nvidia.com/gpu")
            if req:
                used[node] = used.get(node, 0) + int(req)
    rows = []
    for n in k8s.list_objects(conn, "v1", "Node"):
        alloc = int((n.get("status", {}).get("allocatable") or {}).get("nvidia.com/gpu", 0) or 0)
        if not alloc:
            continue
        name = n["metadata"]["name"]
        labels = n["metadata"].get("labels") or {}
        rows.append({
            "node": name,
            "instance_type": labels.get("node.kubernetes.io/instance-type"),
            "product": labels.get("nvidia.com/gpu.product"),
            "allocatable": alloc,
            "requested": used.get(name, 0),
            "free": alloc - used.get(name, 0),
            "schedulable": not n.get("spec", {}).get("unschedulable", False),
        })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["node", "instance_type", "product", "allocatable", "requested", "free", "schedulable"]
    )


def check_gpus(conn: Connection, *, need_gpus: int = 0, tensor: int = 1) -> list[Check]:
    inv = gpu_inventory(conn)
    if inv.empty:
        return [Check("GPU nodes", FAIL, "no node advertises nvidia.com/gpu",
                      "add GPU nodes (scale a g6 MachineSet) and install NFD + the NVIDIA GPU Operator; "
                      "`oc describe node | grep nvidia.com/gpu`")]  # fmt: skip
    products = ", ".join(f"{p} ×{int(g['allocatable'].sum())}" for p, g in inv.groupby("product"))
    free = int(inv[inv["schedulable"]]["free"].sum())
    ev = f"{len(inv)} GPU nodes ({products}); {free} GPUs free now"
    out = [Check("GPU nodes", PASS, ev)]
    if need_gpus:
        fits = int((inv[inv["schedulable"]]["free"] // max(tensor, 1)).sum()) * max(tensor, 1)
        if fits < need_gpus:
            out.append(Check("GPUs for the planned deployment", FAIL,
                             f"need {need_gpus} GPUs in pods of {tensor}; only {fits} usable that way",
                             "free GPUs (delete idle InferenceServices/notebooks), scale the GPU MachineSet, or plan fewer "
                             "replicas"))  # fmt: skip
        else:
            out.append(
                Check(
                    "GPUs for the planned deployment",
                    PASS,
                    f"need {need_gpus} (tensor {tensor}); {fits} usable",
                )
            )
    return out


def _cond(obj: dict, ctype: str) -> dict | None:
    return next(
        (c for c in obj.get("status", {}).get("conditions", []) or [] if c.get("type") == ctype), None
    )


def check_gateway(conn: Connection) -> list[Check]:
    out = []
    gc = k8s.get(conn, "gateway.networking.k8s.io/v1", "GatewayClass", GATEWAY_CLASS)
    if gc is None:
        out.append(Check(f"GatewayClass {GATEWAY_CLASS}", FAIL, "not found",
                         "create the GatewayClass openshift-default (controllerName openshift.io/gateway-controller/v1)"))  # fmt: skip
    else:
        acc = _cond(gc, "Accepted")
        out.append(Check(f"GatewayClass {GATEWAY_CLASS}", PASS if acc and acc.get("status") == "True" else WARN,
                         f"Accepted={acc.get('status') if acc else 'unknown'}"))  # fmt: skip
    gw = k8s.get(conn, "gateway.networking.k8s.io/v1", "Gateway", GATEWAY_NAME, GATEWAY_NS)
    if gw is None:
        out.append(Check(f"Gateway {GATEWAY_NS}/{GATEWAY_NAME}", FAIL, "not found",
                         "create the Gateway openshift-ai-inference in openshift-ingress (class openshift-default); "
                         "avoid a *.apps wildcard hostname, which takes over the console's DNS record"))  # fmt: skip
        return out
    prog = _cond(gw, "Programmed")
    addrs = [a.get("value") for a in gw.get("status", {}).get("addresses", []) or []]
    ev = f"Programmed={prog.get('status') if prog else 'unknown'}; addresses {addrs or 'none'}"
    ok = prog is not None and prog.get("status") == "True" and addrs
    out.append(Check(f"Gateway {GATEWAY_NS}/{GATEWAY_NAME}", PASS if ok else FAIL, ev,
                     "" if ok else f"`oc describe gateway {GATEWAY_NAME} -n {GATEWAY_NS}`; on bare metal a LoadBalancer "
                     "needs MetalLB"))  # fmt: skip
    return out


def check_cluster_queues(conn: Connection) -> list[Check]:
    """ClusterQueues and their GPU quota (cluster-scoped: the instructor's view)."""
    if not k8s.has_kind(conn, "kueue.x-k8s.io/v1beta1", "ClusterQueue"):
        return [Check("Kueue ClusterQueues", WARN, "Kueue CRDs not served",
                      "only needed if your cluster enforces Kueue admission")]  # fmt: skip
    quota = []
    for cq in k8s.list_objects(conn, "kueue.x-k8s.io/v1beta1", "ClusterQueue"):
        gpus = sum(
            int(r.get("nominalQuota", 0))
            for rg in cq.get("spec", {}).get("resourceGroups", []) or []
            for f in rg.get("flavors", []) or []
            for r in f.get("resources", []) or []
            if r.get("name") == "nvidia.com/gpu"
        )
        quota.append(f"{cq['metadata']['name']}: {gpus} GPU")
    return [Check("Kueue ClusterQueues", PASS if quota else WARN, "; ".join(quota) or "none",
                  "" if quota else "create a ClusterQueue with nvidia.com/gpu quota (Kueue admits nothing without one)")]  # fmt: skip


def check_local_queue(conn: Connection, *, queue: str | None = None) -> list[Check]:
    """LocalQueues in your project, and whether the one you plan to use exists."""
    if not k8s.has_kind(conn, "kueue.x-k8s.io/v1beta1", "LocalQueue"):
        return [Check("Kueue LocalQueue", WARN if queue else PASS, "Kueue CRDs not served",
                      "drop the queue label: this cluster has no Kueue" if queue else "")]  # fmt: skip
    lqs = [q["metadata"]["name"] for q in k8s.list_objects(conn, "kueue.x-k8s.io/v1beta1", "LocalQueue", conn.namespace)]
    ev = f"LocalQueues in {conn.namespace}: {', '.join(lqs) or 'none'}"
    if queue and queue not in lqs:
        return [Check("Kueue LocalQueue", FAIL, ev, f"create LocalQueue {queue} in {conn.namespace} pointing at a "
                      "ClusterQueue with nvidia.com/gpu quota (ask your instructor), or use one of the queues listed")]  # fmt: skip
    return [Check("Kueue LocalQueue", PASS if lqs or not queue else WARN, ev)]


KUEUE_MANAGED_LABELS = ("kueue.openshift.io/managed", "kueue-managed")  # RHOAI's opt-in, value "true"


def check_kueue_label(conn: Connection, *, queue: str | None = None) -> list[Check]:
    """Is your project Kueue-managed? Then RHOAI's webhook refuses a service without the queue label."""
    labels = k8s.namespace_labels(conn, conn.namespace)
    if labels is None:
        return [Check("Kueue label on your project", WARN, f"cannot read namespace or project {conn.namespace}",
                      f"`oc get project {conn.namespace} --show-labels`")]  # fmt: skip
    managed = next((k for k in KUEUE_MANAGED_LABELS if labels.get(k) == "true"), None)
    if managed and not queue:
        return [Check("Kueue label on your project", FAIL, f"{conn.namespace} has {managed}=true",
                      "set the queue (kueue.x-k8s.io/queue-name) in settings: RHOAI's Kueue webhook denies an "
                      "LLMInferenceService without it")]  # fmt: skip
    ev = (f"{conn.namespace}: {managed}=true; your services get the label kueue.x-k8s.io/queue-name={queue}"
          if managed else f"{conn.namespace} is not Kueue-managed")
    return [Check("Kueue label on your project", PASS, ev)]


def check_quota(conn: Connection, *, need_gpus: int = 0) -> list[Check]:
    """ResourceQuota on GPUs in your project: what the planned deployment may take."""
    rows = []
    for q in k8s.list_objects(conn, "v1", "ResourceQuota", conn.namespace):
        hard = (q.get("status") or {}).get("hard") or q.get("spec", {}).get("hard") or {}
        used = (q.get("status") or {}).get("used") or {}
        for key in ("requests.nvidia.com/gpu", "nvidia.com/gpu"):
            if key in hard:
                rows.append((q["metadata"]["name"], int(hard[key]), int(used.get(key, 0) or 0)))
    if not rows:
        return [Check(f"GPU quota in {conn.namespace}", PASS, "no ResourceQuota limits GPUs here")]
    free = min(h - u for _, h, u in rows)
    ev = "; ".join(f"{n}: {u}/{h} GPUs used" for n, h, u in rows)
    if need_gpus and free < need_gpus:
        return [Check(f"GPU quota in {conn.namespace}", FAIL, ev + f"; the plan needs {need_gpus}",
                      "plan fewer replicas, delete a service you no longer need, or ask your instructor for more quota")]  # fmt: skip
    return [Check(f"GPU quota in {conn.namespace}", PASS, ev)]


def check_services(conn: Connection) -> list[Check]:
    """Your own LLMInferenceServices and whether each is Ready (what is already using your quota)."""
    if not k8s.has_kind(conn, "serving.kserve.io/v1alpha1", "LLMInferenceService"):
        return []  # check_crds reports the missing CRD
    items = k8s.list_objects(conn, "serving.kserve.io/v1alpha1", "LLMInferenceService", conn.namespace)
    ready = {i["metadata"]["name"]: (_cond(i, "Ready") or {}).get("status", "Unknown") for i in items}
    ev = ", ".join(f"{n} Ready={r}" for n, r in ready.items()) or "none yet"
    return [Check(f"your services in {conn.namespace}", PASS, ev)]


RBAC = (
    ("create", "llminferenceservices", "serving.kserve.io", None),
    ("delete", "llminferenceservices", "serving.kserve.io", None),
    ("list", "pods", "", None),
    ("get", "pods", "", "log"),
    ("get", "pods", "", "proxy"),
    ("list", "events", "", None),
)


def check_rbac(conn: Connection) -> list[Check]:
    denied, allowed = [], []
    for verb, res, group, sub in RBAC:
        label = f"{verb} {res}{'/' + sub if sub else ''}"
        ok = k8s.can_i(conn, verb, res, group=group, namespace=conn.namespace, subresource=sub)
        (allowed if ok else denied).append(label)
    if denied:
        return [Check(f"RBAC in {conn.namespace}", FAIL, f"{conn.user} is denied: " + ", ".join(denied),
                      f"ask an admin of {conn.namespace} (or your instructor): "
                      f"`oc adm policy add-role-to-user edit {conn.user} -n {conn.namespace}`")]  # fmt: skip
    return [Check(f"RBAC in {conn.namespace}", PASS, "allowed: " + ", ".join(allowed))]


@dataclass(frozen=True)
class ClusterWide:
    """What a cluster-scoped check reads, and the command the instructor runs for an attendee who cannot."""

    needs: access.Permission
    instructor_runs: str


def _cluster(verb: str, resource: str, group: str, command: str) -> ClusterWide:
    return ClusterWide(access.Permission(verb, resource, group, namespaced=False), command)


CLUSTER_WIDE: dict[Callable[..., list[Check]], ClusterWide] = {
    check_datasciencecluster: _cluster("list", "datascienceclusters", "datasciencecluster.opendatahub.io",
                                       "oc get datasciencecluster -o jsonpath='{.items[0].spec.components.kserve}'"),
    check_dsci: _cluster("list", "dscinitializations", "dscinitialization.opendatahub.io",
                         "oc get dscinitialization -o jsonpath='{.items[0].spec.serviceMesh}'"),
    check_operators: _cluster("list", "clusterserviceversions", "operators.coreos.com",
                              "oc get csv -A | grep -E 'rhods|rhcl|leader-worker|kueue|cert-manager|nfd|gpu-operator'"),
    check_presets: _cluster("list", "llminferenceserviceconfigs", "serving.kserve.io",
                            "oc get llminferenceserviceconfig -A"),
    check_gpus: _cluster("list", "nodes", "",
                         "oc get nodes -l nvidia.com/gpu.present=true "
                         "-o custom-columns=NODE:.metadata.name,GPUS:.status.allocatable.nvidia\\.com/gpu"),
    check_gateway: _cluster("get", "gatewayclasses", "gateway.networking.k8s.io",
                            f"oc get gatewayclass {GATEWAY_CLASS}; oc get gateway {GATEWAY_NAME} -n {GATEWAY_NS}"),
    check_cluster_queues: _cluster("list", "clusterqueues", "kueue.x-k8s.io", "oc get clusterqueue -o wide"),
}  # fmt: skip
#: Checks of your own project: they run for everyone.
NAMESPACED = (check_api, check_crds, check_rbac, check_quota, check_local_queue, check_kueue_label, check_services)


def _ask(conn: Connection, fn: Callable[..., list[Check]], wide: ClusterWide) -> Check:
    return Check(fn.__name__.removeprefix("check_"), ASK,
                 f"{conn.user} cannot {wide.needs.label}: only the instructor sees this",
                 f"ask your instructor to run: `{wide.instructor_runs}`")  # fmt: skip


def _one(conn: Connection, fn: Callable[..., list[Check]], kwargs: dict, audience: str) -> list[Check]:
    wide = CLUSTER_WIDE.get(fn)
    if audience == ATTENDEE and wide and not access.access_review(conn.api, wide.needs, None):
        return [_ask(conn, fn, wide)]  # not even tried: an attendee's notebook never lists cluster-wide objects
    try:
        return fn(conn, **kwargs)
    except ApiException as exc:
        if exc.status == 403 and audience == ATTENDEE and wide:
            return [_ask(conn, fn, wide)]
        why = access.explain(exc)
        if isinstance(why, access.PermissionDenied) and audience == ATTENDEE:  # your project, but not your right
            return [Check(fn.__name__.removeprefix("check_"), ASK, str(why).split(". Ask ")[0],
                          f"ask {why.granted_by} to run: `{why.grant}`")]  # fmt: skip
        evidence = str(why) if isinstance(why, access.PermissionDenied) else f"API error {exc.status} {exc.reason}"
        return [Check(fn.__name__.removeprefix("check_"), FAIL, evidence,
                      "check your access to this API (`oc auth can-i --list -n " + conn.namespace + "`)")]  # fmt: skip


def run(
    conn: Connection,
    *,
    replicas: int = 0,
    tensor: int = 1,
    multi_node: bool = False,
    queue: str | None = None,
    audience: str | None = None,
    checks: Iterable[Callable[..., list[Check]]] | None = None,
) -> CheckTable:
    """Run every check (or ``checks``) for ``audience`` and return the table.

    ``audience``: ``"instructor"`` (every check; a 403 is a failure) or ``"attendee"`` (cluster-wide
    checks you cannot read become ``ask your instructor`` rows with the command to run); default: the
    instructor when you are cluster-admin. ``replicas`` × ``tensor`` is the GPU need compared with free
    GPUs and your project's quota; ``queue`` is the Kueue LocalQueue you plan to use; ``multi_node``
    makes the LeaderWorkerSet operator required. A check that crashes becomes a ``fail`` row with the
    error as evidence, so one broken API never hides the others.
    """
    audience = audience or (INSTRUCTOR if conn.is_cluster_admin else ATTENDEE)
    if audience not in (ATTENDEE, INSTRUCTOR):
        raise ValueError(f"audience must be {ATTENDEE!r} or {INSTRUCTOR!r}, not {audience!r}")
    plan = {
        check_gpus: {"need_gpus": replicas * tensor, "tensor": tensor},
        check_quota: {"need_gpus": replicas * tensor},
        check_operators: {"multi_node": multi_node},
        check_local_queue: {"queue": queue},
        check_kueue_label: {"queue": queue},
    }
    chosen = list(checks) if checks is not None else [
        check_api, check_datasciencecluster, check_dsci, check_operators, check_crds, check_presets, check_gpus,
        check_gateway, check_cluster_queues, check_local_queue, check_kueue_label, check_quota, check_rbac,
        check_services,
    ]  # fmt: skip
    rows: list[Check] = []
    for fn in chosen:
        rows.extend(_one(conn, fn, plan.get(fn, {}), audience))
    return table(rows)
