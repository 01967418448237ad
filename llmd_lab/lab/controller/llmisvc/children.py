"""The objects KServe's llmisvc controller creates for one LLMInferenceService, rendered from its merged spec.

Every child carries KServe's name (``llmd_lab.kserve.names.child_name``), labels and a controller ownerReference, so the
store's garbage collector removes them with the service. ``desired_children`` is pure: the reconciler
diffs its output against the store.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmd_lab.kserve import epp, names
from llmd_lab.kserve import labels as kserve_labels
from llmd_lab.kserve.names import child_name

MODEL_MOUNT = "/mnt/models"
POOL_GROUP = "inference.networking.x-k8s.io"
AUTH_ANNOTATION = "security.opendatahub.io/enable-auth"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

@dataclass(frozen=True)
class ClusterFacts:
    """What the reconciler knows about the cluster that shapes the children (from the served CRDs)."""

    monitoring: bool = True  # PodMonitor/ServiceMonitor CRDs served
    auth_policy: bool = True  # kuadrant.io AuthPolicy CRD served
    gateway_protocol: str = "HTTP"
    # env the storage-initializer gets from the model's credentials Secret(s) (workload_storage.go)
    storage_env: tuple[dict, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def owner_reference(llmisvc: Mapping[str, Any]) -> dict:
    meta = llmisvc["metadata"]
    return {
        "apiVersion": llmisvc.get("apiVersion", names.API_VERSION),
        "kind": names.KIND,
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(llmisvc: Mapping[str, Any], name: str, labels: Mapping[str, str], namespaced: bool = True) -> dict:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels), "ownerReferences": [owner_reference(llmisvc)]}
    if namespaced:
        meta["namespace"] = llmisvc["metadata"]["namespace"]
    return meta


def _main_container(pod_spec: dict) -> dict | None:
    return next((c for c in pod_spec.get("containers") or [] if c.get("name") == "main"), None)


def attach_model(pod_spec: dict, uri: str) -> dict:
    """Mount the model the way KServe does for the URI's scheme (modelcar, storage-initializer or PVC)."""
    spec = copy.deepcopy(pod_spec)
    main = _main_container(spec)
    if main is None or not uri:
        return spec
    scheme, _, rest = uri.partition("://")
    mounts = main.setdefault("volumeMounts", [])
    if scheme == "oci":
        spec["shareProcessNamespace"] = True
        spec.setdefault("initContainers", []).insert(0, {
            "name": "modelcar-init",
            "image": rest,
            "command": ["sh", "-c", "echo 'Pre-fetching modelcar " + rest + ": Done!'"],
            "resources": {"limits": {"cpu": "10m", "memory": "15Mi"}, "requests": {"cpu": "10m", "memory": "15Mi"}},
        })
        spec["containers"].append({
            "name": "modelcar",
            "image": rest,
            "args": ["sh", "-c", "ln -sf /proc/$$/root/models /mnt/ && sleep infinity"],
            "resources": {"limits": {"cpu": "10m", "memory": "15Mi"}, "requests": {"cpu": "10m", "memory": "15Mi"}},
            "volumeMounts": [{"name": "model-volume", "mountPath": "/mnt"}],
        })
        spec.setdefault("volumes", []).append({"name": "model-volume", "emptyDir": {}})
        mounts.append({"name": "model-volume", "mountPath": "/mnt"})
    elif scheme == "pvc":
        claim, _, sub_path = rest.partition("/")
        spec.setdefault("volumes", []).append(
            {"name": "model-volume", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        mount = {"name": "model-volume", "mountPath": MODEL_MOUNT, "readOnly": True}
        if sub_path:
            mount["subPath"] = sub_path
        mounts.append(mount)
    else:  # hf://, s3://, gs://, https:// — downloaded by the storage initializer
        spec.setdefault("initContainers", []).insert(0, {
            "name": "storage-initializer",
            "image": "registry.redhat.io/rhoai/odh-kserve-storage-initializer-rhel9:v3.0",
            "args": [uri, MODEL_MOUNT],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "100Mi"}},
            "volumeMounts": [{"name": "kserve-provision-location", "mountPath": MODEL_MOUNT}],
        })
        spec.setdefault("volumes", []).append({"name": "kserve-provision-location", "emptyDir": {}})
        mounts.append({"name": "kserve-provision-location", "mountPath": MODEL_MOUNT, "readOnly": True})
    return spec


def _pod_template(labels: Mapping[str, str], pod_spec: Mapping[str, Any], uri: str) -> dict:
    return {"metadata": {"labels": dict(labels)}, "spec": attach_model(dict(pod_spec), uri)}


def _propagated(llmisvc: Mapping[str, Any]) -> dict[str, str]:
    labels = llmisvc["metadata"].get("labels") or {}
    return {QUEUE_LABEL: labels[QUEUE_LABEL]} if QUEUE_LABEL in labels else {}


def _lws_size(workload: Mapping[str, Any]) -> int:
    p = workload.get("parallelism") or {}
    if p.get("data") or p.get("dataLocal"):
        return max(int(p.get("data", 1)) // max(int(p.get("dataLocal", 1)), 1), 1)
    if p.get("pipeline"):
        return int(p["pipeline"])
    return 1


def _workload(llmisvc: Mapping[str, Any], workload: Mapping[str, Any], *, prefill: bool, pd: bool, uri: str) -> list[dict]:
    """The Deployment (single node) or LeaderWorkerSet (multi node) for the main/decode or prefill workload."""
    name = llmisvc["metadata"]["name"]
    role = "prefill" if prefill else ("decode" if pd else "both")
    suffix = "-prefill" if prefill else ""
    extra = _propagated(llmisvc)
    replicas = int(workload.get("replicas", 1) if workload.get("replicas") is not None else 1)
    template = workload.get("template") or {}
    if workload.get("worker") is None:
        labels = kserve_labels.workload_labels(name, f"llminferenceservice-workload{suffix}", role)
        return [{
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(llmisvc, child_name(name, f"-kserve{suffix}"), {**labels, **extra}),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": _pod_template({**labels, **extra}, template, uri),
            },
        }]
    leader = kserve_labels.workload_labels(name, f"llminferenceservice-workload-leader{suffix}", role)
    worker = kserve_labels.workload_labels(name, f"llminferenceservice-workload-worker{suffix}", None, workload=False)
    return [{
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": _meta(llmisvc, child_name(name, f"-kserve-mn{suffix}"), {**leader, **extra}),
        "spec": {
            "replicas": replicas,
            "startupPolicy": "LeaderCreated",
            "leaderWorkerTemplate": {
                "size": _lws_size(workload),
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": _pod_template({**leader, **extra}, template, uri),
                "workerTemplate": _pod_template({**worker, **extra}, workload["worker"], uri),
            },
        },
    }]


def _workload_service(llmisvc: Mapping[str, Any]) -> dict:
    name = llmisvc["metadata"]["name"]
    labels = kserve_labels.workload_labels(name, "llminferenceservice-workload", None, workload=False)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(llmisvc, child_name(name, names.WORKLOAD_SERVICE), labels),
        "spec": {
            "type": "ClusterIP",
            "selector": kserve_labels.pool_selector(name),
            "ports": [{"name": "https", "port": 8000, "targetPort": 8000, "protocol": "TCP", "appProtocol": "https"}],
        },
    }


def _scheduler(llmisvc: Mapping[str, Any], spec: Mapping[str, Any]) -> list[dict]:
    """EPP: ServiceAccount, Role, RoleBinding, InferenceModel, Deployment, Service, InferencePool."""
    name = llmisvc["metadata"]["name"]
    ns = llmisvc["metadata"]["namespace"]
    scheduler = (spec.get("router") or {}).get("scheduler") or {}
    labels = kserve_labels.scheduler_labels(name)
    sa_name = child_name(name, names.EPP_SERVICE_ACCOUNT)
    pool_name = child_name(name, names.INFERENCE_POOL)
    template = copy.deepcopy(scheduler.get("template") or {"containers": []})
    template.setdefault("serviceAccountName", sa_name)
    main = _main_container(template)
    if main is not None:
        args = list(main.get("args") or [])
        if not epp.has_config_arg(args):
            args += ["--config-text", epp.scheduler_config_text(spec.get("prefill") is not None)]
        main["args"] = args
    pool_spec = copy.deepcopy((scheduler.get("pool") or {}).get("spec") or {})
    if not pool_spec.get("selector"):
        pool_spec["selector"] = kserve_labels.pool_selector(name)
    pool_spec.setdefault("targetPortNumber", 8000)
    objs: list[dict] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(llmisvc, sa_name, labels)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(llmisvc, child_name(name, names.EPP_ROLE), labels),
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["inference.networking.x-k8s.io"], "resources": ["inferencepools", "inferenceobjectives",
                 "inferencemodels"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"],
                 "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(llmisvc, child_name(name, names.EPP_ROLE_BINDING), labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": child_name(name, names.EPP_ROLE)},
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}],
        },
        {
            "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
            "kind": "InferenceModel",
            "metadata": _meta(llmisvc, child_name(name, names.INFERENCE_MODEL), labels),
            "spec": {
                "modelName": spec.get("model", {}).get("name", name),
                "criticality": (spec.get("model") or {}).get("criticality", "Critical"),
                "poolRef": {"group": POOL_GROUP, "kind": "InferencePool", "name": pool_name},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(llmisvc, child_name(name, names.SCHEDULER), labels),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": dict(labels)}, "spec": template},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(llmisvc, child_name(name, names.EPP_SERVICE), labels),
            "spec": {
                "type": "ClusterIP",
                "selector": dict(labels),
                "ports": _epp_service_ports(template),
            },
        },
        {
            "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
            "kind": "InferencePool",
            "metadata": _meta(llmisvc, pool_name, labels),
            "spec": pool_spec,
        },
    ]
    return objs


def _epp_service_ports(template: Mapping[str, Any]) -> list[dict]:
    """KServe's EPP Service (scheduler.go expectedSchedulerService): only the scheduler containers' ports named
    grpc, grpc-health and metrics, target port by name, sorted by name. No KV-event (ZMQ) port: vLLM pointed at
    ``tcp://<name>-epp-service:5557`` reaches nothing."""
    found: dict[str, Mapping[str, Any]] = {}
    for container in template.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") in epp.EPP_SERVICE_PORT_NAMES:
                found[port["name"]] = port
    return [{"name": name, "port": int(port["containerPort"]), "targetPort": name,
             "protocol": port.get("protocol", "TCP")} for name, port in sorted(found.items())]


def _route(llmisvc: Mapping[str, Any], spec: Mapping[str, Any]) -> list[dict]:
    route = (spec.get("router") or {}).get("route") or {}
    http = route.get("http") or {}
    if http.get("refs") or not http.get("spec"):
        return []
    name = llmisvc["metadata"]["name"]
    return [{
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(llmisvc, child_name(name, names.ROUTE), kserve_labels.router_labels(name)),
        "spec": copy.deepcopy(http["spec"]),
    }]


def _routing_sidecar_rbac(llmisvc: Mapping[str, Any]) -> list[dict]:
    name = llmisvc["metadata"]["name"]
    labels = kserve_labels.base_labels(name)
    sa = child_name(name, names.WORKLOAD)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(llmisvc, sa, labels)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(llmisvc, child_name(name, names.WORKLOAD_ROLE), labels),
            "rules": [{"apiGroups": ["inference.networking.x-k8s.io"], "resources": ["inferencepools"],
                       "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(llmisvc, child_name(name, names.WORKLOAD_ROLE_BINDING), labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": child_name(name, names.WORKLOAD_ROLE)},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": llmisvc["metadata"]["namespace"]}],
        },
    ]


def auth_enabled(llmisvc: Mapping[str, Any]) -> bool:
    """RHOAI 3.0 protects llm-d endpoints unless the annotation says ``"false"``."""
    return (llmisvc["metadata"].get("annotations") or {}).get(AUTH_ANNOTATION, "true").lower() != "false"


def _pod_specs(obj: Mapping[str, Any]) -> list[dict]:
    if obj["kind"] == "Deployment":
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == "LeaderWorkerSet":
        tpl = obj["spec"]["leaderWorkerTemplate"]
        return [tpl["leaderTemplate"]["spec"], tpl["workerTemplate"]["spec"]]
    return []


def _attach_credentials(objs: list[dict], env: tuple[dict, ...]) -> None:
    """CreateSecretVolumeAndEnvFromServiceAccount: the credentials' env on every storage-initializer."""
    for obj in objs:
        for pod_spec in _pod_specs(obj):
            for init in pod_spec.get("initContainers") or []:
                if init.get("name") == "storage-initializer":
                    init["env"] = [*(init.get("env") or []), *copy.deepcopy(list(env))]


def desired_children(llmisvc: Mapping[str, Any], spec: Mapping[str, Any], facts: ClusterFacts | None = None) -> list[dict]:
    """Every owned child for ``llmisvc`` given its merged ``spec``, in KServe's reconcile order."""
    facts = facts or ClusterFacts()
    uri = (spec.get("model") or {}).get("uri", "")
    pd = spec.get("prefill") is not None
    objs: list[dict] = []  # the self-signed certificate Secret is reconciled on its own (tls.py)
    if pd:
        objs += _routing_sidecar_rbac(llmisvc)
        objs += _workload(llmisvc, spec["prefill"], prefill=True, pd=True, uri=uri)
    main = _workload(llmisvc, spec, prefill=False, pd=pd, uri=uri)
    if pd:
        for obj in main:
            pod_specs = [obj["spec"]["template"]["spec"]] if obj["kind"] == "Deployment" else [
                obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]]
            for ps in pod_specs:
                ps.setdefault("serviceAccountName", child_name(llmisvc["metadata"]["name"], names.WORKLOAD))
    objs += main
    _attach_credentials(objs, facts.storage_env)
    objs.append(_workload_service(llmisvc))
    router = spec.get("router") or {}
    scheduler = router.get("scheduler")
    if scheduler is not None and not ((scheduler.get("pool") or {}).get("ref") or {}).get("name"):
        objs += _scheduler(llmisvc, spec)
    objs += _route(llmisvc, spec)
    if auth_enabled(llmisvc) and facts.auth_policy and objs[-1]["kind"] == "HTTPRoute":
        name = llmisvc["metadata"]["name"]
        objs.append({
            "apiVersion": "kuadrant.io/v1",
            "kind": "AuthPolicy",
            "metadata": _meta(llmisvc, child_name(name, names.ROUTE_AUTH_POLICY), kserve_labels.base_labels(name)),
            "spec": {
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                              "name": child_name(name, names.ROUTE)},
                "rules": {"authentication": {"kubernetes-user": {
                    "kubernetesTokenReview": {"audiences": ["https://kubernetes.default.svc"]}}},
                    "authorization": {"inference-access": {"kubernetesSubjectAccessReview": {
                        "user": {"selector": "auth.identity.user.username"},
                        "resourceAttributes": {"verb": {"value": "get"}, "group": {"value": "serving.kserve.io"},
                                               "resource": {"value": "llminferenceservices"},
                                               "namespace": {"value": llmisvc["metadata"]["namespace"]},
                                               "name": {"value": name}}}}}},
            },
        })
    return objs


def monitoring_objects(namespace: str) -> list[dict]:
    """Per-namespace PodMonitor/ServiceMonitor KServe keeps for every namespace with an llmisvc (not owned)."""
    labels = {"app.kubernetes.io/component": "llm-monitoring", "monitoring.opendatahub.io/scrape": "true"}
    relabel = [
        {"sourceLabels": ["__name__"], "regex": "(.*)", "targetLabel": "__name__", "replacement": "kserve_$1",
         "action": "replace"},
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "kserve-metrics-reader-sa", "namespace": namespace, "labels": labels}},
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": {"name": "kserve-llm-isvc-vllm-engine", "namespace": namespace, "labels": labels},
            "spec": {
                "selector": {"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": [
                    "llminferenceservice-workload", "llminferenceservice-workload-prefill",
                    "llminferenceservice-workload-worker", "llminferenceservice-workload-leader",
                    "llminferenceservice-workload-leader-prefill", "llminferenceservice-workload-worker-prefill"]}]},
                "podMetricsEndpoints": [{"targetPort": 8000, "scheme": "https", "tlsConfig": {"insecureSkipVerify": True},
                                         "metricRelabelings": relabel}],
            },
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "kserve-llm-isvc-scheduler", "namespace": namespace, "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/component": "llminferenceservice-router-scheduler"}},
                "endpoints": [{"port": "metrics", "scheme": "https", "tlsConfig": {"insecureSkipVerify": True},
                               "authorization": {"credentials": {"name": "kserve-metrics-reader-sa-secret",
                                                                 "key": "token"}},
                               "metricRelabelings": relabel}],
            },
        },
    ]
