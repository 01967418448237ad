"""Diagnose an LLMInferenceService that is not doing what you expect: evidence plus the fix.

Each diagnosis is one of the failure modes the workshop guides' troubleshooting sections describe:

* pods Pending for GPUs (``Insufficient nvidia.com/gpu``, an untolerated GPU taint, a node selector no node matches);
* Kueue: pods gated or workloads without quota, a queue label naming no LocalQueue, or the label missing in a
  Kueue-managed namespace (RHOAI's webhook denies the service: ``missing required label "kueue.x-k8s.io/queue-name"``);
* the ``kuadrant.io`` AuthPolicy CRD missing while auth is enabled (RHOAI 3.0 needs ``enable-auth: "false"``);
* the gateway answering 500 (TLS origination to the HTTPS vLLM) where a passthrough Route works;
* the EPP reading the wrong KV-cache metric name (``--kv-cache-usage-percentage-metric``);
* vLLM in CrashLoopBackOff (OOMKilled, or the last log lines), or the storage-initializer in
  ``Init:CrashLoopBackOff`` on a gated Hugging Face model without a token (``GatedRepoError``);
* KServe unable to combine the presets (``PresetsCombined=False``, ``CombineBaseError``: no children at all);
* pods refused by the project's ResourceQuota (``FailedCreate``: ``exceeded quota``);
* a 403: the service is in a project you have no role in (the row names the grant and who gives it);
* a model name mismatch: the endpoint answers 404 for the name clients send.

:func:`run` returns a :class:`~llmd_lab.preflight.CheckTable` with one row per finding.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from kubernetes.client.rest import ApiException

from llmd_lab import access, k8s
from llmd_lab.connection import Connection
from llmd_lab.kserve import names
from llmd_lab.kserve.labels import (  # the KServe vocabulary, re-exported for notebooks and deploy
    ROLE_LABEL as ROLE_LABEL,
)
from llmd_lab.kserve.labels import (
    ROLES as ROLES,
)
from llmd_lab.kserve.labels import (
    SCHEDULER_COMPONENT as SCHEDULER_COMPONENT,
)
from llmd_lab.kserve.labels import (
    role_selector as role_selector,
)
from llmd_lab.kserve.labels import (
    scheduler_selector as scheduler_selector,
)
from llmd_lab.kserve.labels import service_selector as all_pods_selector
from llmd_lab.kserve.labels import (
    workload_selector as workload_selector,
)
from llmd_lab.kserve.names import child_name
from llmd_lab.manifests import (
    API_VERSION,
    ENABLE_AUTH_ANNOTATION,
    KIND,
    KUEUE_QUEUE_LABEL,
    KV_METRIC_FLAG,
    KV_METRIC_NAME,
)
from llmd_lab.preflight import FAIL, KUEUE_MANAGED_LABELS, PASS, WARN, Check, CheckTable, table

# ------------------------------------------------------------------------------------------------ routing
EPP_METRICS_PORT = 9090


def route_trace(
    conn: Connection, name: str, request_id: str, namespace: str | None = None, *, port: int = EPP_METRICS_PORT
) -> dict | None:
    """The EPP's decision trace for ``request_id`` (the ``x-request-id`` the traffic client sends).

    Asks every EPP pod of service ``name`` (:func:`scheduler_selector`) for
    ``/debug/traces/<request_id>`` on its metrics port through the API server's pod proxy, so it works
    from a laptop with only API access. Returns the first trace found (a dict for :func:`llmd_lab.viz.explain_route`),
    or None when no pod has one: the EPP forgot it (it keeps recent ones), or this EPP has no
    ``/debug/traces`` at all — OpenShift AI's does not; pass ``on_cluster=True`` to :func:`llmd_lab.viz.explain_route`
    then. Running pods are asked first, newest first, because a rollout leaves the old EPP's traces behind.
    """
    ns = namespace or conn.namespace
    pods = conn.core.list_namespaced_pod(ns, label_selector=scheduler_selector(name)).items
    pods = sorted(
        pods,
        key=lambda p: (p.status is not None and p.status.phase == "Running", str(p.metadata.creation_timestamp or "")),
        reverse=True,
    )
    for pod in pods:
        try:
            resp = conn.core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod.metadata.name}:{port}", ns, f"debug/traces/{request_id}", _preload_content=False
            )
            trace = json.loads(resp.data)
        except (ApiException, ValueError):
            continue  # 404: not this pod's request (or no trace endpoint); 503: pod not serving
        if isinstance(trace, dict):
            return trace
    return None


def _conditions(obj: dict) -> list[dict]:
    return obj.get("status", {}).get("conditions", []) or []


def diagnose_scheduling(conn: Connection, name: str, pods: list[dict]) -> list[Check]:
    out = []
    for pod in pods:
        if pod.get("status", {}).get("phase") != "Pending":
            continue
        pname = pod["metadata"]["name"]
        gates = [g.get("name") for g in pod.get("spec", {}).get("schedulingGates", []) or []]
        if any("kueue" in (g or "") for g in gates):
            out.append(Check(f"pod {pname}: waiting for Kueue admission", FAIL, f"scheduling gates {gates}",
                             "the ClusterQueue has no free quota: `oc get workloads -n <ns>`, free GPUs in the queue or "
                             "raise its nominalQuota"))  # fmt: skip
            continue
        cond = next(
            (c for c in pod.get("status", {}).get("conditions", []) or [] if c.get("type") == "PodScheduled"),
            None,
        )
        msg = (cond or {}).get("message", "")
        if not msg:
            events = k8s.events_for(conn, pod)
            msg = next((e["message"] for e in reversed(events) if e["reason"] == "FailedScheduling"), "")
        if not msg:
            out.append(Check(f"pod {pname}: Pending", WARN, "no scheduling decision yet (no PodScheduled condition or event)",
                             "wait a little; if it stays, `oc get events -n <ns>` and check the scheduler"))  # fmt: skip
            continue
        out.append(Check(f"pod {pname}: Pending", FAIL, msg, _pending_fix(msg)))
    return out


def _pending_fix(msg: str) -> str:
    """What to change for a scheduler's (or Kueue's) reason to keep a pod Pending."""
    if "Insufficient nvidia.com/gpu" in msg:
        return ("not enough free GPUs: scale the GPU MachineSet, delete other GPU workloads, or lower replicas/tensor "
                "(`llmd_lab.preflight.gpu_inventory(conn)` shows what is free)")  # fmt: skip
    if "insufficient unused quota" in msg:  # Kueue: the ClusterQueue behind your LocalQueue is full
        return ("Kueue holds the pod until its ClusterQueue has quota: delete services you no longer need "
                "(`deploy.delete_workshop_services(conn)`, notebook 10), lower replicas/tensor, or ask your instructor "
                "to raise the ClusterQueue's nominalQuota (`oc get workloads -n <ns>`)")  # fmt: skip
    if "LocalQueue" in msg and "doesn't exist" in msg:
        return f"the {KUEUE_QUEUE_LABEL} label names no LocalQueue here: set queue to one that exists (ask your instructor)"
    if "untolerated taint" in msg:
        return "add the GPU toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule} to spec.template"
    if "node affinity/selector" in msg:
        return "no node matches spec.template.nodeSelector: check instance-type labels (`oc get nodes -L node.kubernetes.io/instance-type`)"
    return "read the scheduler's message; `oc describe pod` shows the same"


def diagnose_refused_kueue(conn: Connection, ns: str) -> list[Check]:
    """For a service that is not there: in a Kueue-managed namespace RHOAI's webhook refuses one without the
    queue label (``missing required label "kueue.x-k8s.io/queue-name"``), so a failed apply likely lacked it."""
    labels = k8s.namespace_labels(conn, ns) or {}
    managed = next((key for key in KUEUE_MANAGED_LABELS if labels.get(key) == "true"), None)
    if managed is None:
        return []
    queues = _local_queues(conn, ns)
    return [Check("Kueue queue label", WARN,
                  f"namespace {ns} is Kueue-managed ({managed}=true): RHOAI's Kueue webhook denies an LLMInferenceService "
                  f'without {KUEUE_QUEUE_LABEL} (missing required label "{KUEUE_QUEUE_LABEL}")',
                  f"if apply was refused, add metadata.labels {KUEUE_QUEUE_LABEL}: <LocalQueue> "
                  f"({', '.join(queues) or 'none in ' + ns}) and re-apply")]  # fmt: skip


def _local_queues(conn: Connection, ns: str) -> list[str]:
    if not k8s.has_kind(conn, "kueue.x-k8s.io/v1beta1", "LocalQueue"):
        return []
    return [q["metadata"]["name"] for q in k8s.list_objects(conn, "kueue.x-k8s.io/v1beta1", "LocalQueue", ns)]


def diagnose_kueue(conn: Connection, obj: dict) -> list[Check]:
    if not k8s.has_kind(conn, "kueue.x-k8s.io/v1beta1", "LocalQueue"):
        return []
    ns = obj["metadata"].get("namespace") or conn.namespace
    label = (obj["metadata"].get("labels") or {}).get(KUEUE_QUEUE_LABEL)
    try:
        queues = _local_queues(conn, ns)
    except access.PermissionDenied as why:  # an attendee may not list LocalQueues: show the label, name the grant
        return [Check("Kueue queue label", WARN,
                      f"{KUEUE_QUEUE_LABEL}={label or '(none)'}; cannot check it: {str(why).split('. Ask ')[0]}",
                      f"ask {why.granted_by} to run `{why.grant}`, or ask your instructor which LocalQueue to use")]  # fmt: skip
    out = []
    if label and label not in queues:
        out.append(Check("Kueue queue label", FAIL, f"{KUEUE_QUEUE_LABEL}={label} but LocalQueues in {ns}: {queues or 'none'}",
                         f"set the label to one of {queues} or create LocalQueue {label}"))  # fmt: skip
    for wl in k8s.list_objects(conn, "kueue.x-k8s.io/v1beta1", "Workload", ns):
        if obj["metadata"]["name"] not in wl["metadata"]["name"]:
            continue
        qr = next((c for c in _conditions(wl) if c.get("type") == "QuotaReserved"), None)
        if qr is not None and qr.get("status") == "False":
            out.append(Check(f"Kueue workload {wl['metadata']['name']}", FAIL, qr.get("message", ""),
                             "the queue's ClusterQueue lacks quota: free GPUs in that queue or raise nominalQuota"))  # fmt: skip
    return out


def diagnose_presets(conn: Connection, obj: dict) -> list[Check]:
    """``PresetsCombined=False``: KServe could not merge the service's presets/baseRefs (config_merge.go,
    reason ``CombineBaseError``) and creates no children at all, so there are no pods to look at."""
    bad = next((c for c in _conditions(obj) if c.get("type") == "PresetsCombined" and c.get("status") == "False"), None)
    if bad is None:
        return []
    return [Check("KServe presets", FAIL, f"PresetsCombined=False {bad.get('reason', '')}: {bad.get('message', '')}",
                  "a baseRef or the preset this layout needs is not installed: RHOAI 3.0 ships the single-node, "
                  "data-parallel (worker + parallelism.data/dataLocal) and P/D presets, not pipeline parallelism "
                  "(`oc get llminferenceserviceconfig -n <ns>` and in the RHOAI applications namespace); fix "
                  "spec.baseRefs or the parallelism fields and re-apply")]  # fmt: skip


def diagnose_quota(conn: Connection, name: str, ns: str) -> list[Check]:
    """Pods the ReplicaSet could not create because the project's ResourceQuota is used up: kube-apiserver's
    quota admission refuses them (``exceeded quota: …``) and the controller reports ``FailedCreate``."""
    out = []
    for rs in k8s.list_objects(conn, "apps/v1", "ReplicaSet", ns, label_selector=all_pods_selector(name)):
        events = k8s.events_for(conn, {**rs, "kind": "ReplicaSet"})
        refused = next((e["message"] for e in reversed(events)
                        if e["reason"] == "FailedCreate" and "exceeded quota" in (e["message"] or "")), None)  # fmt: skip
        if refused:
            out.append(Check(f"ReplicaSet {rs['metadata']['name']}: quota", FAIL, refused,
                             f"your project's ResourceQuota is used up (`oc describe quota -n {ns}`): delete services "
                             "you no longer need (notebook 10), lower replicas/tensor, or ask your instructor for more"))  # fmt: skip
    return out


def _denied(conn: Connection, ns: str, name: str, why: access.PermissionDenied) -> CheckTable:
    return table([Check("LLMInferenceService", FAIL, f"{ns}/{name}: {str(why).split('. Ask ')[0]}",
                        f"work in your own project (settings / notebook 00), or ask {why.granted_by} to run "
                        f"`{why.grant}`")])  # fmt: skip


def diagnose_auth(conn: Connection, obj: dict) -> list[Check]:
    enabled = (obj["metadata"].get("annotations") or {}).get(ENABLE_AUTH_ANNOTATION, "true") != "false"
    has_crd = k8s.has_kind(conn, "kuadrant.io/v1", "AuthPolicy")
    mentions = [c.get("message", "") for c in _conditions(obj) if "AuthPolicy" in (c.get("message") or "")]
    if enabled and not has_crd:
        return [Check("AuthPolicy CRD", FAIL,
                      f"auth is enabled (annotation {ENABLE_AUTH_ANNOTATION} not 'false') and authpolicies.kuadrant.io/v1 is "
                      "not served" + (f"; status says: {mentions[0]}" if mentions else ""),
                      f"set annotation {ENABLE_AUTH_ANNOTATION}: 'false' (auth is broken in RHOAI 3.0), or install "
                      "Red Hat Connectivity Link and restart the KServe controllers")]  # fmt: skip
    if mentions:
        return [
            Check(
                "AuthPolicy",
                FAIL,
                mentions[0],
                "install Red Hat Connectivity Link (kuadrant.io/v1 AuthPolicy)",
            )
        ]
    return []


def diagnose_crashes(conn: Connection, pods: list[dict]) -> list[Check]:
    """Containers that crash or restart — the storage-initializer init container too (a gated model fails there:
    ``Init:CrashLoopBackOff`` with ``GatedRepoError`` in its log) — with the log tail and what to change."""
    out = []
    for pod in pods:
        pname = pod["metadata"]["name"]
        status = pod.get("status", {})
        for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if waiting.get("reason") != "CrashLoopBackOff" and not last:
                continue
            restarts = cs.get("restartCount", 0)
            if last.get("reason") == "OOMKilled":
                out.append(Check(f"pod {pname}/{cs['name']}: OOMKilled", FAIL,
                                 f"{restarts} restarts; last exit OOMKilled (exit {last.get('exitCode')})",
                                 "raise the container memory limit, or lower --max-model-len / --max-num-seqs so vLLM "
                                 "allocates less host memory"))  # fmt: skip
                continue
            logs = k8s.pod_logs(
                conn, pname, pod["metadata"].get("namespace"), container=cs["name"], tail=8, previous=True
            )
            logs = logs or k8s.pod_logs(
                conn, pname, pod["metadata"].get("namespace"), container=cs["name"], tail=8
            )
            hint = _log_hint(logs)
            out.append(Check(f"pod {pname}/{cs['name']}: {waiting.get('reason') or 'restarting'}", FAIL,
                             f"{restarts} restarts; exit {last.get('exitCode')} {last.get('reason', '')}\n"
                             + "\n".join(logs.strip().splitlines()[-5:]), hint))  # fmt: skip
    return out


GATED_FIX = ("the model is gated on Hugging Face: accept its licence on the model page, then give KServe your token "
             "the way its storage-initializer reads it — a Secret with key HF_TOKEN and the annotation "
             "serving.kserve.io/storageSecretName: <secret> on the LLMInferenceService (settings.hf_token_file) — or "
             "pick an ungated build (e.g. RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8)")  # fmt: skip


def _log_hint(logs: str) -> str:
    low = logs.lower()
    if "gatedrepoerror" in low or "cannot access gated repo" in low:
        return GATED_FIX
    if "out of memory" in low or "cuda out of memory" in low or "no available memory for the cache" in low:
        return "the model does not fit: raise tensor (more GPUs), lower --max-model-len or --gpu-memory-utilization"
    if "max_model_len" in low or "max model len" in low:
        return "--max-model-len is larger than the KV cache can hold: lower it"
    if "not found" in low or "does not exist" in low or "401" in low:
        return "the model could not be downloaded: check spec.model.uri and any HF token / pull secret"
    return "read the log tail above; `oc logs --previous` shows the crashed run"


def diagnose_epp_metric(conn: Connection, name: str, namespace: str) -> list[Check]:
    dep = k8s.get(conn, "apps/v1", "Deployment", child_name(name, names.SCHEDULER), namespace)
    if dep is None:
        return []
    containers = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) or []
    args = [a for c in containers for a in (c.get("args") or [])]
    config = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--config-text"), "")
    metric = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == KV_METRIC_FLAG), None)
    if metric == KV_METRIC_NAME:
        return [Check("EPP KV-cache metric", PASS, f"{KV_METRIC_FLAG} {metric}")]
    uses_kv = "kv-cache-utilization-scorer" in config
    return [Check("EPP KV-cache metric", FAIL if uses_kv else WARN,
                  f"{KV_METRIC_FLAG} {metric or 'not set (default vllm:gpu_cache_usage_perc)'}"
                  + ("; the config uses kv-cache-utilization-scorer" if uses_kv else ""),
                  f"add `{KV_METRIC_FLAG} {KV_METRIC_NAME}` to router.scheduler.template main args (RHOAIENG-41868); "
                  "llmd_lab.manifests does this by default")]  # fmt: skip


def probe_endpoint(
    url: str, model: str, *, verify: Any = True, token: str | None = None, timeout: float = 20.0
) -> tuple[int | None, str]:
    """POST a 1-token completion to ``url``; (status, body or error text)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.post(f"{url.rstrip('/')}/v1/completions", json={"model": model, "prompt": "hi", "max_tokens": 1},
                          headers=headers, verify=verify, timeout=timeout)  # fmt: skip
        return resp.status_code, resp.text[:400]
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"


def diagnose_endpoint(conn: Connection, obj: dict, *, verify: Any = True) -> list[Check]:
    url = obj.get("status", {}).get("url")
    if not url:
        return []
    model = obj["spec"].get("model", {}).get("name") or obj["metadata"]["name"]
    token = (
        conn.bearer_token()
        if (obj["metadata"].get("annotations") or {}).get(ENABLE_AUTH_ANNOTATION) == "true"
        else None
    )
    status, body = probe_endpoint(url, model, verify=verify, token=token)
    if status == 200:
        return [Check("endpoint", PASS, f"{url} served model {model!r}")]
    if status == 404 and re.search(r"model.*does not exist", body, re.I):
        served = ""
        try:
            served = ", ".join(
                m["id"]
                for m in httpx.get(f"{url.rstrip('/')}/v1/models", verify=verify, timeout=10).json()["data"]
            )
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        return [Check("endpoint: model name", FAIL, f"404 for model {model!r}: {body[:160]}" + (f"; served: {served}" if served else ""),
                      "send the served name (spec.model.name; --served-model-name) in the request's \"model\" field")]  # fmt: skip
    if status == 500:
        ns = obj["metadata"].get("namespace") or conn.namespace
        routes = [r["metadata"]["name"] for r in k8s.list_objects(conn, "route.openshift.io/v1", "Route", ns)]
        return [Check("endpoint: gateway 500", FAIL, f"{url} answered 500: {body[:160]}",
                      "known RHOAI 3.0 issue: the gateway's TLS origination to the HTTPS vLLM fails. Use an OpenShift Route "
                      "with passthrough TLS to the workload Service" + (f" (routes here: {routes})" if routes else
                      " (`oc create route passthrough --service <name>-kserve-workload-svc`)"))]  # fmt: skip
    return [Check("endpoint", FAIL, f"{url}: {status or 'no answer'} {body[:200]}",
                  "check the HTTPRoute and Gateway (`oc get httproute,gateway -A`)")]  # fmt: skip


def run(
    conn: Connection, name: str, namespace: str | None = None, *, probe: bool = True, verify: Any = True
) -> CheckTable:
    """Run every diagnosis for one LLMInferenceService; a healthy service gives only ``pass`` rows."""
    ns = namespace or conn.namespace
    try:
        obj = k8s.get(conn, API_VERSION, KIND, name, ns)
    except access.PermissionDenied as why:  # 403: not your project (or no role in it)
        return _denied(conn, ns, name, why)
    if obj is None:
        missing = [Check("LLMInferenceService", FAIL, f"{ns}/{name} not found",
                         "apply it first (`llmd_lab.deploy.apply`), or check the name and namespace")]  # fmt: skip
        missing += _readable(diagnose_refused_kueue, conn, ns)
        return table(missing)
    rows: list[Check] = []
    ready = next((c for c in _conditions(obj) if c.get("type") == "Ready"), None)
    not_ready = [c for c in _conditions(obj) if c.get("status") != "True"]
    is_ready = ready is not None and ready.get("status") == "True"
    shown = not_ready or ([ready] if ready else [])
    evidence = "; ".join(
        f"{c['type']}={c.get('status')} {c.get('reason', '')}: {c.get('message', '')}" for c in shown
    )
    rows.append(
        Check(
            "LLMInferenceService Ready",
            PASS if is_ready else FAIL,
            evidence or "no conditions yet",
            "" if is_ready else "see the rows below",
        )
    )
    try:
        pods = k8s.pods(conn, ns, all_pods_selector(name))
    except ApiException:
        pods = []
    rows += diagnose_presets(conn, obj)
    rows += diagnose_scheduling(conn, name, pods)
    rows += _readable(diagnose_quota, conn, name, ns)
    rows += _readable(diagnose_kueue, conn, obj)
    rows += _readable(diagnose_auth, conn, obj)
    rows += diagnose_crashes(conn, pods)
    rows += _readable(diagnose_epp_metric, conn, name, ns)
    if probe and is_ready:
        rows += diagnose_endpoint(conn, obj, verify=verify)
    return table(rows)


def _readable(diagnose: Any, conn: Connection, *args: Any) -> list[Check]:
    """One diagnosis, or — when it needs a read you are not granted (an attendee and Kueue's LocalQueues) — a
    row saying which permission is missing and who grants it, so the other findings still show."""
    try:
        return diagnose(conn, *args)
    except access.PermissionDenied as why:
        return [Check(diagnose.__name__.removeprefix("diagnose_"), WARN, str(why).split(". Ask ")[0],
                      f"ask {why.granted_by} to run: `{why.grant}`")]  # fmt: skip
