"""The CRD controllers of apiextensions-apiserver: serve a CustomResourceDefinition's resources while it is
stored, and before a deleted CRD goes, delete its instances (the ``customresourcecleanup`` finalizer).

Upstream: kubernetes@v1.32 staging/src/k8s.io/apiextensions-apiserver/pkg/controller/finalizer/crd_finalizer.go
(deleteInstances, then removing the finalizer) and .../apiserver/customresource_handler.go (serving).
"""

from __future__ import annotations

from llmd_lab.lab.apiserver import strategy
from llmd_lab.lab.apiserver.bus import Change
from llmd_lab.lab.apiserver.lifecycle.base import LifecycleController


class CRDController(LifecycleController):
    def start(self) -> None:
        for crd in list(self.storage.by_namespace(strategy.CRD_GK).get("", {}).values()):
            self.verbs.registry.register_crd(crd)
        super().start()

    def observe(self, change: Change) -> None:
        if change.group_kind == strategy.CRD_GK:
            if change.new is None:
                assert change.old is not None
                self.verbs.registry.unregister_crd(change.old["metadata"]["name"])
                return
            self.verbs.registry.register_crd(change.new)
            if change.new["metadata"].get("deletionTimestamp"):
                self._delete_instances(change.new)
            return
        if change.new is None and change.group_kind[0]:
            self._progress(change.group_kind)

    def _delete_instances(self, crd: dict) -> None:
        gk = (crd["spec"]["group"], crd["spec"]["names"]["kind"])
        for ns, bucket in list(self.storage.by_namespace(gk).items()):
            for name in sorted(bucket):
                key = (gk[0], gk[1], ns, name)
                obj = self.storage.find(key)
                if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                    self.delete_background(key, obj)
        self._progress(gk)

    def _progress(self, gk: tuple[str, str]) -> None:
        if any(self.storage.by_namespace(gk).values()):
            return
        for crd in list(self.storage.by_namespace(strategy.CRD_GK).get("", {}).values()):
            spec = crd.get("spec") or {}
            fin = crd["metadata"].get("finalizers") or []
            if (spec.get("group"), (spec.get("names") or {}).get("kind")) != gk \
                    or not crd["metadata"].get("deletionTimestamp") or strategy.CRD_CLEANUP not in fin:
                continue
            self.drop_finalizer(crd, strategy.CRD_CLEANUP)
