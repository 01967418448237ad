"""The namespace controller: kube-controller-manager's ``namespace`` controller.

A namespace marked Terminating (rest.py's delete) has everything in it deleted; once nothing is left and
no finalizer holds it, it is removed. Creating in a Terminating namespace is refused by the REST layer.

Upstream: kubernetes@v1.32 pkg/controller/namespace/deletion/namespaced_resources_deleter.go. The real
controller then clears ``spec.finalizers`` through ``namespaces/<n>/finalize``; the lab's namespaces carry
no ``kubernetes`` finalizer, so it removes the namespace directly.
"""

from __future__ import annotations

from llmd_lab.lab.apiserver.bus import Change
from llmd_lab.lab.apiserver.lifecycle.base import LifecycleController
from llmd_lab.lab.apiserver.rest import NAMESPACE_GK


class NamespaceController(LifecycleController):
    def observe(self, change: Change) -> None:
        obj = change.new if change.new is not None else change.old
        assert obj is not None
        if change.group_kind == NAMESPACE_GK:
            if change.new is not None and change.new["metadata"].get("deletionTimestamp"):
                self._empty(change.new["metadata"]["name"])
            return
        ns = obj["metadata"].get("namespace")
        if change.new is None and ns:
            self._progress(ns)

    def _terminating(self, ns: str) -> dict | None:
        namespace = self.storage.find(("", "Namespace", "", ns))
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return None
        return namespace

    def _empty(self, ns: str) -> None:
        if self._terminating(ns) is None:
            return
        for key in self.storage.keys_in_namespace(ns):
            obj = self.storage.find(key)
            if obj is None:
                continue
            served = self.verbs.registry.storage_type(key[0], key[1]) is not None
            if not (served and obj["metadata"].get("deletionTimestamp")):  # one being deleted waits on its finalizers
                self.delete_background(key, obj)
        self._progress(ns)

    def _progress(self, ns: str) -> None:
        namespace = self._terminating(ns)
        if namespace is not None and not namespace["metadata"].get("finalizers") and self.storage.namespace_is_empty(ns):
            self.verbs.remove(("", "Namespace", "", ns))
