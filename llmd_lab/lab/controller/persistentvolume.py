"""Dynamic provisioning and binding of PersistentVolumeClaims: kube-controller-manager's PV controller
(kubernetes 1.32 ``pkg/controller/volume/persistentvolume/pv_controller.go``) and the CSI
external-provisioner of the class's driver (kubernetes-csi/external-provisioner, sig-storage-lib-external-
provisioner ``controller.go``), folded into one reconciler.

A claim of a ``WaitForFirstConsumer`` class stays Pending ("waiting for first consumer") until kube-scheduler
names a node (``volume.kubernetes.io/selected-node``); a claim of an ``Immediate`` class is provisioned at
once. Provisioning creates ``pvc-<claim uid>`` with the requested size, pinned to the node's zone (EBS
volumes are zonal), and binds both ways: the claim Bound to it, it Bound to the claim. A deleted claim's
volume is deleted (reclaimPolicy Delete) or Released (Retain). A claim without a class has no provisioner
and stays Pending: the lab has no static volumes. Not modelled: access-mode enforcement at attach time
(an EBS ReadWriteOnce volume on two nodes: Multi-Attach error), capacity limits, resizing, snapshots.
"""

from __future__ import annotations

import hashlib

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.base import Reconciler, Watch, self_key

SELECTED_NODE = "volume.kubernetes.io/selected-node"
ZONE_LABEL = "topology.kubernetes.io/zone"


def claim_key(pv: dict) -> list[tuple[str, str]]:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return [(ref["namespace"], ref["name"])] if ref.get("namespace") and ref.get("name") else []


class PersistentVolumeController(Reconciler):
    name = "persistentvolume-binder-controller"
    watches = (
        Watch("v1", "PersistentVolumeClaim", self_key),
        Watch("v1", "PersistentVolume", claim_key),
    )

    def __init__(self) -> None:
        super().__init__()
        self._recorded: set[tuple[str, str]] = set()  # (claim uid, event reason) already recorded

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        claim = await self.get_or_none("v1", "PersistentVolumeClaim", name, namespace)
        if claim is None:
            await self._reclaim(namespace, name)
            return False
        spec = claim.get("spec") or {}
        if spec.get("volumeName") or claim["metadata"].get("deletionTimestamp"):
            return None
        class_name = spec.get("storageClassName") or ""
        sc = await self.get_or_none("storage.k8s.io/v1", "StorageClass", class_name, None) if class_name else None
        if sc is None:
            message = (f'storageclass.storage.k8s.io "{class_name}" not found' if class_name else
                       "no persistent volumes available for this claim and no storage class is set")
            await self._once(claim, "Warning", "ProvisioningFailed" if class_name else "FailedBinding", message)
            return None
        node_name = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not node_name:
            await self._once(claim, "Normal", "WaitForFirstConsumer",
                             "waiting for first consumer to be created before binding")
            return None
        await self._provision(claim, sc, node_name)
        return None

    async def _once(self, claim: dict, type_: str, reason: str, message: str) -> None:
        """Record an event for the claim's current state (the resync must not repeat it every pass)."""
        marker = (claim["metadata"]["uid"], reason)
        if marker not in self._recorded:
            self._recorded.add(marker)
            await self.event(claim, type_, reason, message)

    async def _provision(self, claim: dict, sc: dict, node_name: str | None) -> None:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        provisioner = sc.get("provisioner", "")
        pv_name = f"pvc-{meta['uid']}"
        await self._once(claim, "Normal", "ExternalProvisioning",
                         f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                         "or manually by the system administrator. If volume creation is delayed, please verify "
                         "that the provisioner is running and correctly registered.")
        await self._once(claim, "Normal", "Provisioning",
                         f'External provisioner is provisioning volume for claim "{meta["namespace"]}/{meta["name"]}"')
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        pv = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": provisioner,
                                                          "volume.kubernetes.io/provisioner-deletion-secret-name": "",
                                                          "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "storageClassName": sc["metadata"]["name"],
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                             "name": meta["name"], "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
                "csi": {"driver": provisioner, "fsType": "ext4",
                        "volumeHandle": "vol-" + hashlib.sha256(meta["uid"].encode()).hexdigest()[:17]},
            },
        }
        zone = await self._zone(node_name)
        if zone:
            pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": [zone]}]}]}}
        try:
            created = await self.store.create(pv)
        except ApiError as exc:
            if exc.code != 409:
                raise
            created = await self.store.get("v1", "PersistentVolume", pv_name)
        await self._once(claim, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")
        await self._bind(claim, created)

    async def _zone(self, node_name: str | None) -> str:
        node = await self.get_or_none("v1", "Node", node_name, None) if node_name else None
        return ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE_LABEL, "")

    async def _bind(self, claim: dict, pv: dict) -> None:
        """pv_controller bindVolumeToClaim + bindClaimToVolume, then both statuses Bound."""
        if (pv.get("status") or {}).get("phase") != "Bound":
            pv["status"] = {"phase": "Bound"}
            await self.store.update_status(pv)
        claim = await self.store.get("v1", "PersistentVolumeClaim", claim["metadata"]["name"],
                                     claim["metadata"]["namespace"])
        annotations = claim["metadata"].setdefault("annotations", {})
        provisioner = pv["metadata"]["annotations"].get("pv.kubernetes.io/provisioned-by", "")
        annotations.update({"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                            "volume.beta.kubernetes.io/storage-provisioner": provisioner,
                            "volume.kubernetes.io/storage-provisioner": provisioner})
        claim["spec"]["volumeName"] = pv["metadata"]["name"]
        claim = await self.store.update(claim)
        claim["status"] = {"phase": "Bound", "accessModes": pv["spec"]["accessModes"],
                           "capacity": dict(pv["spec"]["capacity"])}
        await self.store.update_status(claim)

    async def _reclaim(self, namespace: str, name: str) -> None:
        """The claim is gone: its volume is deleted (Delete) or Released (Retain)."""
        pvs, _ = await self.store.list("v1", "PersistentVolume")
        for pv in pvs:
            if claim_key(pv) != [(namespace, name)] or pv["metadata"].get("deletionTimestamp"):
                continue
            if pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
                await self.store.delete("v1", "PersistentVolume", pv["metadata"]["name"])
            elif (pv.get("status") or {}).get("phase") != "Released":
                pv["status"] = {"phase": "Released"}
                await self.store.update_status(pv)
