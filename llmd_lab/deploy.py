"""Apply, wait for, explain and delete an LLMInferenceService — the same calls on a cluster and the lab.

* :func:`apply` validates (``llmd_lab.manifests.validate``) and server-side applies;
* :func:`wait_ready` watches the object (no sleeping) until ``Ready=True`` or a deadline, showing the
  conditions and pod phases in a tqdm bar (a widget in Jupyter); on timeout it raises with the
  diagnosis from :func:`explain`;
* :func:`explain` turns conditions, pod states, scheduling events and log tails into sentences;
* :func:`delete` deletes in the foreground and waits until the workload pods are gone;
* :func:`endpoints` gives the two URLs the workshop compares: ``status.url`` (gateway → llm-d EPP)
  and the workload Service (round-robin over the same pods).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubernetes.client.rest import ApiException
from tqdm.auto import tqdm

from llmd_lab import doctor, k8s, manifests
from llmd_lab.manifests import API_VERSION, KIND

CONDITIONS = ("MainWorkloadReady", "WorkloadsReady", "RouterReady", "Ready")


class DeployError(RuntimeError):
    """Apply was refused, or the service did not become Ready in time; the message says why."""


def apply(conn: Any, obj: dict, *, validate: bool = True, dry_run: bool = False) -> dict:
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


def get(conn: Any, name: str, namespace: str | None = None) -> dict | None:
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


def wait_ready(
    conn: Any, name: str, namespace: str | None = None, *, timeout_s: float = 900, progress: bool = True
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


def explain(conn: Any, name: str, namespace: str | None = None, *, probe: bool = True) -> str:
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


def delete(
    conn: Any, name: str, namespace: str | None = None, *, timeout_s: float = 180, wait: bool = True
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


@dataclass
class Endpoints:
    """The two ways into the same pods: through the gateway + EPP (llm-d) or the workload Service."""

    gateway: str | None
    service: str | None
    model: str

    def targets(self) -> dict[str, str]:
        """``{"llm-d": gateway, "round-robin": service}`` for :func:`llmd_lab.traffic.compare`."""
        return {k: v for k, v in (("llm-d", self.gateway), ("round-robin", self.service)) if v}


def endpoints(conn: Any, name: str, namespace: str | None = None) -> Endpoints:
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
