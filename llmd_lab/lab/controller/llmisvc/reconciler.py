"""The LLMInferenceService reconciler: presets → workloads → router → monitoring → status (KServe's order).

Level-triggered: every pass renders the desired children from the current spec and presets, applies them,
deletes owned children that are no longer desired (e.g. the scheduler after ``router.scheduler`` is
removed), and recomputes the status from what the children report.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from typing import Any

from llmd_lab.kserve import names
from llmd_lab.kserve.names import API_VERSION, KIND, child_name
from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.context import LabContext
from llmd_lab.lab.controller.apply import apply
from llmd_lab.lab.controller.base import Key, Reconciler, Watch, owner_keys, self_key
from llmd_lab.lab.controller.llmisvc import status as st
from llmd_lab.lab.controller.llmisvc import tls
from llmd_lab.lab.controller.llmisvc.children import (
    ClusterFacts,
    auth_enabled,
    desired_children,
    monitoring_objects,
    owner_reference,
)
from llmd_lab.lab.controller.llmisvc.presets import CONFIG_NAMESPACE, GlobalConfig, PresetError, combine

CONFIG_KIND = "LLMInferenceServiceConfig"
# every kind the reconciler may own, so stale children of any of them are found and removed
OWNED_KINDS = (
    ("v1", "Secret"), ("v1", "ServiceAccount"), ("v1", "Service"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("apps/v1", "Deployment"), ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
    ("inference.networking.x-k8s.io/v1alpha2", "InferencePool"),
    ("inference.networking.x-k8s.io/v1alpha2", "InferenceModel"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"), ("kuadrant.io/v1", "AuthPolicy"),
)
AUTH_CRD = ("kuadrant.io/v1", "AuthPolicy")
ROUTER_KINDS = {"InferencePool", "InferenceModel", "HTTPRoute", "AuthPolicy"}
STORAGE_SECRET_ANNOTATION = "serving.kserve.io/storageSecretName"  # inferenceservice-config credentials
HF_TOKEN = "HF_TOKEN"  # pkg/credentials/hf/hf_secret.go HFTokenKey


class LLMInferenceServiceController(Reconciler):
    name = "llmisvc-controller"

    def __init__(self, global_config: GlobalConfig | None = None) -> None:
        super().__init__()
        self.global_config = global_config or GlobalConfig()
        self._keys = tls.KeyPool()
        self.watches = (
            Watch(API_VERSION, KIND, self_key),
            Watch(API_VERSION, CONFIG_KIND, self._everything),
            Watch("apps/v1", "Deployment", owner_keys(KIND)),
            Watch("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", owner_keys(KIND)),
            Watch("gateway.networking.k8s.io/v1", "HTTPRoute", owner_keys(KIND)),
            Watch("inference.networking.x-k8s.io/v1alpha2", "InferencePool", owner_keys(KIND)),
            Watch("gateway.networking.k8s.io/v1", "Gateway", self._everything),
        )

    async def start(self, ctx: LabContext) -> None:
        await super().start(ctx)
        self._tasks.append(asyncio.create_task(self._keys.run(), name=f"{self.name}-tls-keys"))

    def _everything(self, _obj: dict) -> list[Key]:
        return list(self._known)

    # ---- cluster facts
    def _served(self, api_version: str, kind: str) -> bool:
        return self.store.registry.find_kind(api_version, kind) is not None

    def _profile_issue(self, name: str) -> bool:
        return bool(self.ctx.profile is not None and self.ctx.profile.issue(name))

    async def _find_config(self, namespace: str, name: str) -> dict | None:
        if not self._served(API_VERSION, CONFIG_KIND):
            return None
        return await self.get_or_none(API_VERSION, CONFIG_KIND, name, namespace)

    # ---- reconcile
    async def reconcile(self, namespace: str, name: str) -> bool | None:
        svc = await self.get_or_none(API_VERSION, KIND, name, namespace)
        if svc is None:
            return False
        if svc["metadata"].get("deletionTimestamp"):
            return None
        configs = await self._configs(namespace)
        try:
            spec = combine(svc, lambda ns, n: configs.get((ns, n)), self.global_config)
        except PresetError as exc:
            await self._presets_failed(svc, exc)
            return None
        facts = ClusterFacts(monitoring=self._served("monitoring.coreos.com/v1", "PodMonitor"),
                             auth_policy=self._served(*AUTH_CRD),
                             storage_env=await self._storage_env(svc, spec))
        router_error = self._router_error(svc, facts)
        await self._self_signed_certs(svc)
        desired = desired_children(svc, spec, facts)
        if router_error:
            desired = [o for o in desired if not _router_child(name, o)]
        conditions = [st.Cond("PresetsCombined", "True")]
        live = await self._apply_children(svc, desired, conditions)
        await self._prune(svc, {(o["kind"], o["metadata"]["name"]) for o in desired}
                          | {("Secret", child_name(name, names.SELF_SIGNED_CERTS))})
        if facts.monitoring:
            for obj in monitoring_objects(namespace):
                with contextlib.suppress(ApiError):
                    await self.store.create(obj)
        workload_parts = _workload_conditions(name, spec, live, conditions)
        conditions = [c for c in conditions if c.type != "MainWorkloadReady"] + workload_parts
        workloads = st.aggregate("WorkloadsReady", workload_parts)
        router_parts, urls = await self._router_conditions(name, spec, live, router_error)
        router_cond = st.aggregate("RouterReady", router_parts)
        conditions += [*router_parts, workloads, router_cond]
        await self._write_status(svc, conditions, st.ready(workloads, router_cond), urls)
        return None

    async def _configs(self, namespace: str) -> dict[tuple[str, str], dict]:
        """LLMInferenceServiceConfigs of the service's namespace and ``kserve``, by (namespace, name)."""
        configs: dict[tuple[str, str], dict] = {}
        if not self._served(API_VERSION, CONFIG_KIND):
            return configs
        for ns in (namespace, CONFIG_NAMESPACE):
            items, _ = await self.store.list(API_VERSION, CONFIG_KIND, ns)
            configs.update({(ns, item["metadata"]["name"]): item for item in items})
        return configs

    def _router_error(self, svc: dict, facts: ClusterFacts) -> str:
        if self._profile_issue("authPolicyRequiredForGateway") and not facts.auth_policy and auth_enabled(svc):
            return (
                "failed to validate Gateway: the AuthPolicy CRD (authpolicies.kuadrant.io) is not installed, so "
                "authentication cannot be enforced; install Red Hat Connectivity Link (rhcl-operator) and restart "
                'the controllers, or set the annotation security.opendatahub.io/enable-auth: "false"'
            )
        return ""

    async def _apply_children(self, svc: dict, desired: list[dict], conditions: list[st.Cond]) -> dict:
        """Apply each desired child the cluster serves; the live objects by (kind, name)."""
        live: dict[tuple[str, str], dict] = {}
        for obj in desired:
            if not self._served(obj["apiVersion"], obj["kind"]):
                if obj["kind"] == "LeaderWorkerSet":
                    conditions.append(st.Cond("MainWorkloadReady", "False", "ReconcileMultiNodeWorkloadError",
                                              "the LeaderWorkerSet CRD is not installed: install the Red Hat build "
                                              "of Leader Worker Set operator"))
                continue
            try:
                obj_live, _action = await apply(self.store, obj)
            except ApiError as exc:
                await self.event(svc, "Warning", "ReconcileError", f"{obj['kind']} {obj['metadata']['name']}: "
                                 f"{exc.message}")
                continue
            live[(obj["kind"], obj["metadata"]["name"])] = obj_live
        return live

    async def _router_conditions(self, name: str, spec: dict, live: dict,
                                 router_error: str) -> tuple[list[st.Cond], list[str]]:
        """GatewaysReady, HTTPRoutesReady, InferencePoolReady, SchedulerWorkloadReady; and the URLs."""
        router = spec.get("router") or {}
        gw_ref = ((router.get("gateway") or {}).get("refs") or [{}])[0]
        gw_name = gw_ref.get("name") or self.global_config.ingress_gateway_name
        gw_ns = gw_ref.get("namespace") or self.global_config.ingress_gateway_namespace
        gateway = None
        if self._served("gateway.networking.k8s.io/v1", "Gateway"):
            gateway = await self.get_or_none("gateway.networking.k8s.io/v1", "Gateway", gw_name, gw_ns)
        route_managed = router.get("route") is not None and not ((router.get("route") or {}).get("http") or {}).get(
            "refs")
        sched_managed = router.get("scheduler") is not None and not router_error
        route = live.get(("HTTPRoute", child_name(name, names.ROUTE)))
        parts: list[st.Cond] = []
        if router.get("route") is not None or router.get("gateway") is not None:
            parts.append(st.gateway_condition(gateway, f"{gw_ns}/{gw_name}", router_error))
        parts.append(st.route_condition(route, route_managed and not router_error))
        parts.append(st.pool_condition(live.get(("InferencePool", child_name(name, names.INFERENCE_POOL))),
                                       sched_managed))
        if sched_managed:
            parts.append(st.workload_condition(
                "SchedulerWorkloadReady", live.get(("Deployment", child_name(name, names.SCHEDULER)))))
        urls = st.discover_urls(gateway, route) if route_managed and not router_error else []
        return parts, urls

    async def _storage_env(self, svc: dict, spec: dict) -> tuple[dict, ...]:
        """workload_storage.go + credentials.CreateSecretVolumeAndEnvFromServiceAccount, for hf:// models: the Secret
        named by the ``serving.kserve.io/storageSecretName`` annotation, else every Secret the workload's
        ServiceAccount lists (``spec.template.serviceAccountName``, else ``default``; KServe's own routing-sidecar
        ServiceAccount under P/D lists none); a Secret with an ``HF_TOKEN`` key gives ``HF_TOKEN`` by secretKeyRef."""
        if not ((spec.get("model") or {}).get("uri") or "").startswith("hf://"):
            return ()
        ns = svc["metadata"]["namespace"]
        annotated = (svc["metadata"].get("annotations") or {}).get(STORAGE_SECRET_ANNOTATION)
        if annotated:
            secret_names = [annotated]
        elif spec.get("prefill") is not None:
            secret_names = []
        else:
            sa_name = (spec.get("template") or {}).get("serviceAccountName") or "default"
            sa = await self.get_or_none("v1", "ServiceAccount", sa_name, ns)
            secret_names = [ref.get("name", "") for ref in (sa or {}).get("secrets") or []]
        env = []
        for secret_name in secret_names:
            secret = await self.get_or_none("v1", "Secret", secret_name, ns)
            if secret is None:
                await self.event(svc, "Warning", "Error", f'Reconciliation failed: failed to reconcile workload: '
                                 f'secrets "{secret_name}" not found')
            elif HF_TOKEN in (secret.get("data") or {}) or HF_TOKEN in (secret.get("stringData") or {}):
                env.append({"name": HF_TOKEN, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": HF_TOKEN}}})
        return tuple(env)

    async def _self_signed_certs(self, svc: dict) -> None:
        """reconcileSelfSignedCertsSecret: create the workload certificate once, keep it while it is valid."""
        name = child_name(svc["metadata"]["name"], names.SELF_SIGNED_CERTS)
        now = datetime.datetime.now(datetime.UTC)
        if tls.usable(await self.get_or_none("v1", "Secret", name, svc["metadata"]["namespace"]), now):
            return
        key_pem, cert_pem = tls.self_signed_pair(await self._keys.get(), now)
        try:
            await apply(self.store, tls.secret(svc, key_pem, cert_pem, now, owner_reference(svc)))
        except ApiError as exc:
            await self.event(svc, "Warning", "ReconcileError", f"Secret {name}: {exc.message}")

    async def _presets_failed(self, svc: dict, exc: PresetError) -> None:
        """controller.go: PresetsCombined=False (not a Ready dependent: WorkloadsReady, RouterReady and Ready keep
        their state, Unknown on a new service), a Warning event, no children reconciled."""
        old = {c.get("type"): c for c in (svc.get("status") or {}).get("conditions") or []}

        def kept(type_: str) -> st.Cond:
            c = old.get(type_) or {}
            return st.Cond(type_, c.get("status", "Unknown"), c.get("reason", ""), c.get("message", ""))

        conditions = [st.Cond("PresetsCombined", "False", exc.reason, exc.message), kept("WorkloadsReady"),
                      kept("RouterReady")]
        await self.event(svc, "Warning", "Error",
                         f"Reconciliation failed: failed to combine base-configurations: {exc.message}")
        await self._write_status(svc, conditions, kept("Ready"), [])

    async def _prune(self, svc: dict, keep: set[tuple[str, str]]) -> None:
        uid = svc["metadata"].get("uid")
        namespace = svc["metadata"]["namespace"]
        for api_version, kind in OWNED_KINDS:
            if not self._served(api_version, kind):
                continue
            items, _ = await self.store.list(api_version, kind, namespace,
                                             label_selector=f"app.kubernetes.io/name={svc['metadata']['name']}")
            for item in items:
                refs = item["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs) and (kind, item["metadata"]["name"]) not in keep:
                    with contextlib.suppress(ApiError):
                        await self.store.delete(api_version, kind, item["metadata"]["name"], namespace)

    async def _write_status(self, svc: dict, conditions: list[st.Cond], ready: st.Cond, urls: list[str]) -> None:
        old = svc.get("status") or {}
        new: dict[str, Any] = {
            "observedGeneration": svc["metadata"].get("generation", 1),
            "conditions": st.merge_conditions(old.get("conditions"), [*conditions, ready], self.now()),
        }
        if urls:
            new["url"] = urls[0]
            new["addresses"] = [{"url": u} for u in urls]
        if {k: old.get(k) for k in ("observedGeneration", "conditions", "url", "addresses")} != {
            k: new.get(k) for k in ("observedGeneration", "conditions", "url", "addresses")
        }:
            was_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in old.get("conditions") or [])
            svc["status"] = new
            await self.store.update_status(svc)
            if ready.ok and not was_ready:
                await self.event(svc, "Normal", "Ready", f"LLMInferenceService is ready at {new.get('url', '')}")


def _router_child(name: str, obj: dict) -> bool:
    """A child of the router (pool, model, route, auth policy, EPP objects): held back when the Gateway fails."""
    return obj["kind"] in ROUTER_KINDS or obj["metadata"]["name"].startswith(
        (child_name(name, "-epp"), child_name(name, "-kserve-router")))


def _workload_conditions(name: str, spec: dict, live: dict, conditions: list[st.Cond]) -> list[st.Cond]:
    """MainWorkloadReady (and PrefillWorkloadReady under P/D) from the Deployment or LeaderWorkerSet."""
    main = live.get(("Deployment", child_name(name, names.WORKLOAD))) or live.get(
        ("LeaderWorkerSet", child_name(name, names.MULTI_NODE)))
    parts = [c for c in conditions if c.type == "MainWorkloadReady"] or [
        st.workload_condition("MainWorkloadReady", main)]
    if spec.get("prefill") is not None:
        prefill = live.get(("Deployment", child_name(name, names.PREFILL_WORKLOAD))) or live.get(
            ("LeaderWorkerSet", child_name(name, names.PREFILL_MULTI_NODE)))
        parts.append(st.workload_condition("PrefillWorkloadReady", prefill))
    return parts
