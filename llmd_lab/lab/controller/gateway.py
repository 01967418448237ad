"""Gateway API status as OpenShift's gateway controller (Istio) reports it: Gateway ``Programmed``,
HTTPRoute parents ``Accepted``/``ResolvedRefs``, and InferencePool ``status.parent`` once a route uses it.

These are what KServe waits on for ``RouterReady``. The data plane itself is the lab gateway (network.py).
"""

from __future__ import annotations

from typing import Any

from llmd_lab.lab.controller.base import Key, Reconciler, Watch, self_key
from llmd_lab.lab.controller.conditions import set_condition

GW_API = "gateway.networking.k8s.io/v1"
POOL_API = "inference.networking.x-k8s.io/v1alpha2"
CONTROLLER_NAME = "openshift.io/gateway-controller/v1"
LAB_ADDRESS = "127.0.0.1"


class GatewayStatusController(Reconciler):
    name = "gateway-controller"

    def __init__(self) -> None:
        super().__init__()
        self.watches = (Watch(GW_API, "Gateway", self_key), Watch(GW_API, "GatewayClass", self._all))

    def _all(self, _obj: dict) -> list[Key]:
        return list(self._known)

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        gw = await self.get_or_none(GW_API, "Gateway", name, namespace)
        if gw is None:
            return False
        now = self.now()
        gen = gw["metadata"].get("generation", 1)
        klass = await self.get_or_none(GW_API, "GatewayClass", gw["spec"].get("gatewayClassName", ""), None)
        conds = list((gw.get("status") or {}).get("conditions") or [])
        if klass is None:
            msg = f'GatewayClass "{gw["spec"].get("gatewayClassName")}" not found'
            conds = set_condition(conds, "Accepted", "False", "InvalidParameters", msg, now, observedGeneration=gen)
            conds = set_condition(conds, "Programmed", "False", "Invalid", msg, now, observedGeneration=gen)
            addresses: list[dict] = []
        else:
            conds = set_condition(conds, "Accepted", "True", "Accepted", "Resource accepted", now,
                                  observedGeneration=gen)
            conds = set_condition(conds, "Programmed", "True", "Programmed", "Resource programmed, assigned to "
                                  "service(s) openshift-ai-inference-openshift-default.openshift-ingress.svc."
                                  "cluster.local", now, observedGeneration=gen)
            addresses = [{"type": "IPAddress", "value": LAB_ADDRESS}]
        listeners = [{"name": lst.get("name", ""), "attachedRoutes": 0, "supportedKinds": [
            {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}, {"group": "gateway.networking.k8s.io",
                                                                         "kind": "GRPCRoute"}],
            "conditions": [{"type": "Programmed", "status": "True" if klass else "False",
                            "reason": "Programmed" if klass else "Invalid", "lastTransitionTime": now,
                            "observedGeneration": gen}]} for lst in gw["spec"].get("listeners") or []]
        new = {"addresses": addresses, "conditions": conds, "listeners": listeners}
        if _differs(gw.get("status") or {}, new):
            gw["status"] = new
            await self.store.update_status(gw)
        return None


def _strip_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_times(v) for k, v in value.items() if k not in ("lastTransitionTime",)}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


def _differs(old: dict, new: dict) -> bool:
    return _strip_times({k: old.get(k) for k in new}) != _strip_times(new)


class HTTPRouteStatusController(Reconciler):
    """Accepts routes whose parent Gateway exists; resolves their backends; marks the InferencePools used."""

    name = "httproute-controller"

    def __init__(self) -> None:
        super().__init__()
        self.watches = (
            Watch(GW_API, "HTTPRoute", self_key),
            Watch(GW_API, "Gateway", self._all),
            Watch(POOL_API, "InferencePool", self._all),
            Watch("v1", "Service", self._all),
        )

    def _all(self, _obj: dict) -> list[Key]:
        return list(self._known)

    async def _backends(self, route: dict, namespace: str) -> tuple[list[str], list[str]]:
        """The route's backendRefs that do not resolve (``Kind name``), and the InferencePools it names."""
        unresolved: list[str] = []
        pools: list[str] = []
        for rule in route["spec"].get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                kind = ref.get("kind", "Service")
                if kind == "InferencePool" and ref.get("group", POOL_API.split("/")[0]) == POOL_API.split("/")[0]:
                    pools.append(ref["name"])
                    found = await self.get_or_none(POOL_API, "InferencePool", ref["name"], namespace)
                elif kind == "Service":
                    found = await self.get_or_none("v1", "Service", ref["name"], namespace)
                else:
                    found = None  # e.g. the inference.networking.k8s.io pool: not served by this gateway
                    if ref.get("weight", 1) == 0:
                        continue
                if found is None:
                    unresolved.append(f"{kind} {ref['name']}")
        return unresolved, pools

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        route = await self.get_or_none(GW_API, "HTTPRoute", name, namespace)
        if route is None:
            return False
        now = self.now()
        gen = route["metadata"].get("generation", 1)
        unresolved, pools = await self._backends(route, namespace)
        parents = []
        accepted_gateways = []
        old_parents = (route.get("status") or {}).get("parents") or []
        for pref in route["spec"].get("parentRefs") or []:
            gw_ns = pref.get("namespace", namespace)
            gw = await self.get_or_none(GW_API, "Gateway", pref["name"], gw_ns)
            old = next((p for p in old_parents if p.get("parentRef", {}).get("name") == pref["name"]), {})
            conds = list(old.get("conditions") or [])
            if gw is None:
                conds = set_condition(conds, "Accepted", "False", "NoMatchingParent",
                                      f"parent Gateway {gw_ns}/{pref['name']} not found", now, observedGeneration=gen)
            else:
                accepted_gateways.append((gw_ns, pref["name"]))
                conds = set_condition(conds, "Accepted", "True", "Accepted", "Route was valid", now,
                                      observedGeneration=gen)
            if unresolved:
                conds = set_condition(conds, "ResolvedRefs", "False", "BackendNotFound",
                                      "backend(s) not found: " + ", ".join(unresolved), now, observedGeneration=gen)
            else:
                conds = set_condition(conds, "ResolvedRefs", "True", "ResolvedRefs", "All references resolved", now,
                                      observedGeneration=gen)
            parents.append({"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                          "name": pref["name"], "namespace": gw_ns},
                            "controllerName": CONTROLLER_NAME, "conditions": conds})
        new = {"parents": parents}
        if _differs(route.get("status") or {}, new):
            route["status"] = new
            await self.store.update_status(route)
        for pool_name in dict.fromkeys(pools):
            await self._mark_pool(namespace, pool_name, accepted_gateways, now)
        return None

    async def _mark_pool(self, namespace: str, name: str, gateways: list[tuple[str, str]], now: str) -> None:
        pool = await self.get_or_none(POOL_API, "InferencePool", name, namespace)
        if pool is None:
            return
        parent = []
        for gw_ns, gw_name in gateways:
            parent.append({
                "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name,
                              "namespace": gw_ns},
                "conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                     "lastTransitionTime": now, "observedGeneration": pool["metadata"].get("generation", 1)},
                    {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "",
                     "lastTransitionTime": now, "observedGeneration": pool["metadata"].get("generation", 1)},
                ],
            })
        new = {"parent": parent}
        if _differs(pool.get("status") or {}, new):
            pool["status"] = new
            await self.store.update_status(pool)
