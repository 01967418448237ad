"""kube-scheduler's VolumeBinding plugin, for the claims a pod mounts (kubernetes 1.32
``pkg/scheduler/framework/plugins/volumebinding/volume_binding.go``, ``binder.go``).

PreFilter: a claim that does not exist, or is being deleted, makes the pod unschedulable on every node; an
unbound claim of an ``Immediate`` class waits for the PV controller ("pod has unbound immediate
PersistentVolumeClaims"). Filter: a bound claim's PersistentVolume ``nodeAffinity`` (an EBS volume's zone)
rules out nodes elsewhere ("volume node affinity conflict"). PreBind: an unbound ``WaitForFirstConsumer``
claim gets ``volume.kubernetes.io/selected-node``, which tells the provisioner where to create the volume.

Lab difference: upstream PreBind waits until the claim is Bound before it binds the pod; the lab binds the
pod at once and the kubelet holds it in ContainerCreating until the claim is Bound (lab/kubelet/volumes.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.scheduler.fit import Reason, matches_node_affinity

SELECTED_NODE = "volume.kubernetes.io/selected-node"
AFFINITY_CONFLICT = Reason("node(s) had volume node affinity conflict", False)
UNBOUND_IMMEDIATE = Reason("pod has unbound immediate PersistentVolumeClaims", False)


def claim_names(pod: Mapping[str, Any]) -> list[str]:
    return [v["persistentVolumeClaim"]["claimName"] for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v.get("persistentVolumeClaim"), dict) and v["persistentVolumeClaim"].get("claimName")]


@dataclass
class PodVolumes:
    """What PreFilter found: a reason every node shares, the bound volumes, the claims to provision."""

    unschedulable: str = ""
    node_reason: Reason | None = None
    volumes: list[dict[str, Any]] = field(default_factory=list)
    delayed: list[dict[str, Any]] = field(default_factory=list)

    def node_reasons(self, node: Mapping[str, Any]) -> list[Reason]:
        """Filter: why ``node`` cannot host the pod's volumes (empty when it can)."""
        if self.node_reason is not None:
            return [self.node_reason]
        for pv in self.volumes:
            terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
            if terms and not matches_node_affinity(
                    {"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}}}},
                    node):
                return [AFFINITY_CONFLICT]
        return []


async def get_or_none(store: Store, api_version: str, kind: str, name: str, namespace: str | None) -> dict | None:
    """The object, or None where it does not exist (other API errors raise)."""
    try:
        return await store.get(api_version, kind, name, namespace)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def pre_filter(store: Store, pod: Mapping[str, Any]) -> PodVolumes:
    """Look up the pod's claims, their classes and bound volumes."""
    out = PodVolumes()
    namespace = pod["metadata"]["namespace"]
    for name in claim_names(pod):
        claim = await get_or_none(store, "v1", "PersistentVolumeClaim", name, namespace)
        if claim is None:
            out.unschedulable = f'persistentvolumeclaim "{name}" not found'
            return out
        if claim["metadata"].get("deletionTimestamp"):
            out.unschedulable = f'persistentvolumeclaim "{name}" is being deleted'
            return out
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            pv = await get_or_none(store, "v1", "PersistentVolume", volume_name, None)
            if pv is not None:
                out.volumes.append(pv)
            continue
        class_name = (claim.get("spec") or {}).get("storageClassName") or ""
        sc = await get_or_none(store, "storage.k8s.io/v1", "StorageClass", class_name, None) if class_name else None
        if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
            out.delayed.append(claim)
        else:
            out.node_reason = UNBOUND_IMMEDIATE
    return out


async def pre_bind(store: Store, volumes: PodVolumes, node_name: str) -> None:
    """Point each delayed claim at the chosen node, so the provisioner creates its volume there."""
    for claim in volumes.delayed:
        annotations = claim["metadata"].get("annotations") or {}
        if annotations.get(SELECTED_NODE) == node_name:
            continue
        await store.patch("v1", "PersistentVolumeClaim", claim["metadata"]["name"], claim["metadata"]["namespace"],
                          {"metadata": {"annotations": {SELECTED_NODE: node_name}}}, "application/merge-patch+json")
