"""Apply, wait for, explain and delete an LLMInferenceService — the same calls on a cluster and the lab.

* :func:`apply` validates (``llmd_lab.manifests.validate``) and server-side applies;
* :func:`wait_ready` watches the object (no sleeping) until ``Ready=True`` or a deadline, showing the
  conditions and pod phases in a tqdm bar (a widget in Jupyter); on timeout it raises with the
  diagnosis from :func:`explain`;
* :func:`explain` turns conditions, pod states, scheduling events and log tails into sentences;
* :func:`delete` deletes in the foreground and waits until the workload pods are gone;
* :func:`pods_frame` tables the service's pods (role, node, GPUs, readiness) — where replicas landed;
* :func:`wait_rolled_out` waits until a spec change (a new EPP config) has replaced the old pods;
* :func:`endpoints` gives the two URLs the workshop compares: ``status.url`` (gateway → llm-d EPP)
  and the workload Service (round-robin over the same pods).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from kubernetes.client.rest import ApiException
from tqdm.auto import tqdm

from llmd_lab import access, doctor, k8s, manifests
from llmd_lab.connection import Connection
from llmd_lab.manifests import API_VERSION, KIND

CONDITIONS = ("MainWorkloadReady", "WorkloadsReady", "RouterReady", "Ready")


class DeployError(RuntimeError):
    """Apply was refused, or the service did not become Ready in time; the message says why."""


@access.explains_forbidden
def apply(conn: Connection, obj: dict, *, validate: bool = True, dry_run: bool = False) -> dict:
    """Create or update ``obj`` in ``conn.namespace`` (unless it names one); returns what the server stored.

    Our validation runs first, so a manifest that cannot work is refused before anything changes. The
    server's own refusals (schema, admission webhooks such as Kueue's queue-name check) come back as
    :class:`DeployError` with the server's message and what to change.
    """
    if validate:
        manifests.validate(obj)
    body = manifests.with_namespace(obj, obj["metadata"].get("namespace") or conn.namespace)
    try:
        return k8s.apply(conn, body, dry_run=dry_run)
    except ApiException as exc:
        raise DeployError(_refusal(exc)) from None


def _refusal(exc: ApiException) -> str:
    import json

    try:
        message = json.loads(exc.body or "{}").get("message") or exc.reason
    except ValueError:
        message = exc.body or exc.reason
    fix = ""
    if "kueue.x-k8s.io/queue-name" in str(message):
        fix = " Fix: add the label kueue.x-k8s.io/queue-name: <LocalQueue> (manifests.llm_inference_service(queue=...))."
    elif exc.status == 403:
        fix = " Fix: you need the edit role in this namespace."
    elif exc.status == 404:
        fix = " Fix: the LLMInferenceService CRD is not served here; run llmd_lab.preflight.run(conn)."
    return f"the API server refused the LLMInferenceService ({exc.status}): {message}.{fix}"


def get(conn: Connection, name: str, namespace: str | None = None) -> dict | None:
    """The LLMInferenceService as a dict, or None."""
    return k8s.get(conn, API_VERSION, KIND, name, namespace or conn.namespace)


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in obj.get("status", {}).get("conditions", []) or []}


def is_ready(obj: dict | None) -> bool:
    return bool(obj) and conditions(obj).get("Ready", {}).get("status") == "True"


def _describe(obj: dict, pods: list[dict]) -> str:
    conds = conditions(obj)
    parts = [f"{t}={conds[t].get('status', '?')[0]}" for t in CONDITIONS if t in conds]
    phases: dict[str, int] = {}
    for p in pods:
        phase = p.get("status", {}).get("phase", "?")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in p.get("status", {}).get("conditions", []) or []
        )
        key = "Ready" if ready else phase
        phases[key] = phases.get(key, 0) + 1
    return " ".join(parts) + " | pods " + (", ".join(f"{k}:{v}" for k, v in sorted(phases.items())) or "none")


@access.explains_forbidden
def wait_ready(
    conn: Connection, name: str, namespace: str | None = None, *, timeout_s: float = 900, progress: bool = True
) -> dict:
    """Watch until ``Ready=True``; return the object. Raises :class:`DeployError` with a diagnosis on timeout.

    Watches the LLMInferenceService (re-opening the watch in short windows so pod changes are shown
    too); the deadline is wall-clock ``timeout_s`` (model downloads on a real GPU take minutes).
    """
    ns = namespace or conn.namespace
    deadline = time.monotonic() + timeout_s
    bar = tqdm(
        total=len(CONDITIONS),
        desc=f"{name}",
        disable=not progress,
        bar_format="{desc}: {n}/{total} {postfix}",
    )
    try:
        while True:
            obj = get(conn, name, ns)
            if obj is None:
                raise DeployError(f"LLMInferenceService {ns}/{name} does not exist: apply it first")
            pods = k8s.pods(conn, ns, doctor.all_pods_selector(name))
            conds = conditions(obj)
            bar.n = sum(1 for t in CONDITIONS if conds.get(t, {}).get("status") == "True")
            bar.set_postfix_str(_describe(obj, pods), refresh=True)
            if is_ready(obj):
                return obj
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeployError(
                    f"{ns}/{name} not Ready after {timeout_s:.0f}s.\n" + explain(conn, name, ns, probe=False)
                )
            window = min(left, 5.0)
            for _, changed in k8s.watch(conn, API_VERSION, KIND, ns, name=name, timeout_s=window):
                if is_ready(changed) or changed.get("status") != obj.get("status"):
                    break  # re-read object and pods, redraw
    finally:
        bar.close()


def explain(conn: Connection, name: str, namespace: str | None = None, *, probe: bool = True) -> str:
    """Plain-language diagnosis: what is wrong (conditions, pods, events, logs) and what to do."""
    findings = doctor.run(conn, name, namespace, probe=probe)
    bad = findings[findings["status"] != "pass"]
    if bad.empty:
        return f"{name} looks healthy: " + "; ".join(findings["evidence"].head(3))
    lines = []
    for _, row in bad.iterrows():
        lines.append(f"- {row['check']}: {row['evidence']}")
        if row["fix"]:
            lines.append(f"  fix: {row['fix']}")
    return "\n".join(lines)


WORKSHOP_LABEL = "llmd-lab/workshop"  # value "true": everything the notebooks create carries it


@access.explains_forbidden
def delete_workshop_services(conn: Connection, *, keep: tuple[str, ...] = (), namespace: str | None = None) -> list[str]:
    """Delete every workshop LLMInferenceService in the project except ``keep`` and wait until their pods are
    gone; returns the names deleted. A notebook that needs GPUs of its own calls this first, so a run with
    more replicas never leaves its pods Pending (or gated by Kueue) behind an earlier notebook's service."""
    ns = namespace or conn.namespace
    found = k8s.list_objects(conn, API_VERSION, KIND, ns, label_selector=f"{WORKSHOP_LABEL}=true")
    names = [o["metadata"]["name"] for o in found if o["metadata"]["name"] not in keep]
    for name in names:
        delete(conn, name, ns)
    return names


@access.explains_forbidden
def delete(
    conn: Connection, name: str, namespace: str | None = None, *, timeout_s: float = 180, wait: bool = True
) -> bool:
    """Delete the service and (``wait``) block until it and its pods are gone; False if it did not exist."""
    ns = namespace or conn.namespace
    existed = k8s.delete(conn, API_VERSION, KIND, name, ns, propagation="Foreground")
    if not wait:
        return existed
    deadline = time.monotonic() + timeout_s
    selector = doctor.all_pods_selector(name)
    while True:
        gone = get(conn, name, ns) is None
        left_pods = k8s.pods(conn, ns, selector)
        if gone and not left_pods:
            return existed
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeployError(f"{ns}/{name} still has {'the object and ' if not gone else ''}{len(left_pods)} pods after "
                              f"{timeout_s:.0f}s: check finalizers (`oc get llmisvc {name} -o yaml`)")  # fmt: skip
        if left_pods:
            for event_type, _ in k8s.watch(
                conn, "v1", "Pod", ns, label_selector=selector, timeout_s=min(left, 5.0)
            ):
                if event_type == "DELETED":
                    break
        else:
            for event_type, _ in k8s.watch(conn, API_VERSION, KIND, ns, name=name, timeout_s=min(left, 5.0)):
                if event_type == "DELETED":
                    break


# ----------------------------------------------------------------------------------------------- pods
POD_COLUMNS = ("pod", "role", "component", "node", "phase", "ready", "gpus", "restarts", "reason", "ip")
GPU_RESOURCE = "nvidia.com/gpu"


def _pod_row(pod: dict) -> dict[str, Any]:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    labels = meta.get("labels") or {}
    component = (labels.get("app.kubernetes.io/component") or "").removeprefix("llminferenceservice-")
    role = labels.get(doctor.ROLE_LABEL) or ("scheduler" if component == "router-scheduler" else component or None)
    gpus = 0
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        gpus += int((res.get("requests") or {}).get(GPU_RESOURCE) or (res.get("limits") or {}).get(GPU_RESOURCE) or 0)
    statuses = status.get("containerStatuses") or []
    waiting = next((cs["state"]["waiting"].get("reason") for cs in statuses if (cs.get("state") or {}).get("waiting")), None)
    scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
    reason = (
        "Terminating" if meta.get("deletionTimestamp")
        else waiting or (scheduled.get("reason") if scheduled.get("status") == "False" else None) or status.get("reason")
    )  # fmt: skip
    return {
        "pod": meta["name"],
        "role": role,
        "component": component or None,
        "node": spec.get("nodeName"),
        "phase": status.get("phase"),
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []),
        "gpus": gpus,
        "restarts": sum(int(cs.get("restartCount") or 0) for cs in statuses),
        "reason": reason,
        "ip": status.get("podIP"),
    }


@access.explains_forbidden
def pods_frame(conn: Connection, name: str, namespace: str | None = None) -> pd.DataFrame:
    """Every pod of the service as a table — "where did my replicas land?".

    One row per pod (workload, prefill, multi-node workers and the EPP), sorted by role then name, with
    columns ``pod``, ``role`` (``llm-d.ai/role``: both/decode/prefill, or ``scheduler`` for the EPP),
    ``component``, ``node`` (None until scheduled), ``phase``, ``ready``, ``gpus`` (``nvidia.com/gpu``
    requested), ``restarts``, ``reason`` (why it is not running: Unschedulable, CrashLoopBackOff,
    Terminating…) and ``ip``.
    """
    rows = [_pod_row(p) for p in k8s.pods(conn, namespace or conn.namespace, doctor.all_pods_selector(name))]
    frame = pd.DataFrame(rows, columns=list(POD_COLUMNS))
    return frame.sort_values(["role", "pod"], na_position="last", ignore_index=True)


# ----------------------------------------------------------------------------------------------- rollouts
COMPONENT_LABELS = {
    "scheduler": f"app.kubernetes.io/component={doctor.SCHEDULER_COMPONENT}",
    "workload": "app.kubernetes.io/component=llminferenceservice-workload",
    "prefill": "app.kubernetes.io/component=llminferenceservice-workload-prefill",
}


def _rollout_state(dep: dict) -> tuple[bool, str]:
    """(done, what it is doing) — the test ``kubectl rollout status`` applies to a Deployment."""
    meta, spec, st = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    updated, total = int(st.get("updatedReplicas") or 0), int(st.get("replicas") or 0)
    available = int(st.get("availableReplicas") or 0)
    name = meta["name"]
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 1):
        return False, f"{name}: waiting for the Deployment controller to see the change"
    if updated < want:
        return False, f"{name}: {updated} of {want} new replicas updated"
    if total > updated:
        return False, f"{name}: {total - updated} old replicas pending termination"
    if available < updated:
        return False, f"{name}: {available} of {updated} updated replicas available"
    return True, f"{name}: rolled out ({updated} replicas)"


@access.explains_forbidden
def wait_rolled_out(
    conn: Connection,
    name: str,
    component: str = "scheduler",
    namespace: str | None = None,
    *,
    timeout_s: float = 300,
    progress: bool = True,
) -> list[dict]:
    """Wait until a change to the service has reached its pods; return the component's Deployments.

    ``Ready=True`` stays true while the *old* EPP pod serves, so after changing ``router.scheduler``
    (a new EndpointPickerConfig) call this before measuring. It waits for (1) the KServe controller to
    have reconciled the current spec (``status.observedGeneration`` of the LLMInferenceService), then
    (2) each Deployment of ``component`` — ``"scheduler"`` (the EPP), ``"workload"`` (main/decode pods)
    or ``"prefill"`` — to be rolled out as ``kubectl rollout status`` judges it: the Deployment
    controller saw the new generation, all replicas are updated and available, no old ones are left.
    Multi-node (LeaderWorkerSet) workloads are not Deployments and are not covered.
    """
    if component not in COMPONENT_LABELS:
        raise ValueError(f"component must be one of {', '.join(COMPONENT_LABELS)}; got {component!r}")
    ns = namespace or conn.namespace
    selector = f"{COMPONENT_LABELS[component]},{doctor.all_pods_selector(name)}"
    deadline = time.monotonic() + timeout_s
    bar = tqdm(total=1, desc=f"{name} {component}", disable=not progress, bar_format="{desc}{postfix}")
    try:
        while True:
            obj = get(conn, name, ns)
            if obj is None:
                raise DeployError(f"LLMInferenceService {ns}/{name} does not exist: apply it first")
            seen = int((obj.get("status") or {}).get("observedGeneration") or 0)
            deps = k8s.list_objects(conn, "apps/v1", "Deployment", ns, selector)
            if seen < int(obj["metadata"].get("generation") or 1):
                states = [(False, f"waiting for KServe to reconcile generation {obj['metadata'].get('generation')}")]
            elif not deps:
                states = [(False, f"no {component} Deployment for {name} yet")]
            else:
                states = [_rollout_state(d) for d in deps]
            bar.set_postfix_str("; ".join(msg for _, msg in states), refresh=True)
            if all(done for done, _ in states):
                bar.update(1)
                return deps
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeployError(
                    f"{ns}/{name} {component} not rolled out after {timeout_s:.0f}s: "
                    + "; ".join(msg for _, msg in states)
                    + ".\n" + explain(conn, name, ns, probe=False)
                )
            # A watch replays what exists as ADDED; only a resourceVersion we have not read is news.
            known = {o["metadata"].get("resourceVersion") for o in (obj, *deps)}
            reconciled = seen >= int(obj["metadata"].get("generation") or 1)
            api, kind, kw = (
                ("apps/v1", "Deployment", {"label_selector": selector}) if reconciled and deps
                else (API_VERSION, KIND, {"name": name})
            )  # fmt: skip
            for _, changed in k8s.watch(conn, api, kind, ns, timeout_s=min(left, 5.0), **kw):
                if changed["metadata"].get("resourceVersion") not in known:
                    break  # something changed: re-read and re-judge
    finally:
        bar.close()


@dataclass
class Endpoints:
    """The two ways into the same pods: through the gateway + EPP (llm-d) or the workload Service."""

    gateway: str | None
    service: str | None
    model: str

    def targets(self) -> dict[str, str]:
        """``{"llm-d": gateway, "round-robin": service}`` for :func:`llmd_lab.traffic.compare`."""
        return {k: v for k, v in (("llm-d", self.gateway), ("round-robin", self.service)) if v}


@access.explains_forbidden
def endpoints(conn: Connection, name: str, namespace: str | None = None) -> Endpoints:
    """``status.url`` and the ``<name>-kserve-workload-svc`` Service URL (scheme from its port)."""
    ns = namespace or conn.namespace
    obj = get(conn, name, ns)
    if obj is None:
        raise DeployError(f"LLMInferenceService {ns}/{name} not found")
    try:
        svc = k8s.service_url(conn, f"{name}-kserve-workload-svc", ns)
    except (ApiException, ValueError):
        svc = None
    model = obj["spec"].get("model", {}).get("name") or name
    return Endpoints(obj.get("status", {}).get("url"), svc, model)
