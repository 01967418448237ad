"""The garbage collector: kube-controller-manager's ``garbagecollector`` over ``metadata.ownerReferences``.

- An object whose owners are all gone is deleted (Background), also one created after its owners went.
- An owner deleted with ``propagationPolicy=Foreground`` carries the ``foregroundDeletion`` finalizer: its
  dependents are deleted, and the finalizer is removed once none is left.
- An owner deleted with ``propagationPolicy=Orphan`` carries the ``orphan`` finalizer: its dependents lose
  their ownerReference to it, then the finalizer is removed.

Upstream: kubernetes@v1.32 pkg/controller/garbagecollector/garbagecollector.go (attemptToDeleteItem,
processDeletingDependentsItem, attemptToOrphan). The lab reacts within the write that triggered it, where
the real one works off an informer a moment later.
"""

from __future__ import annotations

from llmd_lab.lab.apiserver.bus import Change, clone
from llmd_lab.lab.apiserver.lifecycle.base import LifecycleController
from llmd_lab.lab.apiserver.rest import FOREGROUND, ORPHAN
from llmd_lab.lab.apiserver.storage import Key


class GarbageCollector(LifecycleController):
    def observe(self, change: Change) -> None:
        if change.new is None:
            assert change.old is not None
            self._owner_gone(change.old)
            for ref in change.old["metadata"].get("ownerReferences") or []:
                owner = self.storage.key_of_uid(ref.get("uid", ""))
                if owner is not None:
                    self._progress_foreground(owner)
            return
        meta = change.new["metadata"]
        if change.old is None and self._owners_gone(change.new):
            self._delete(_key(change))  # created after all its owners were deleted
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or []
            if ORPHAN in finalizers:
                self._orphan(_key(change), meta["uid"])
            elif FOREGROUND in finalizers:
                for dep in self.storage.dependents(meta["uid"]):
                    self._delete(dep)
                self._progress_foreground(_key(change))

    def _owner_gone(self, owner: dict) -> None:
        for dep in self.storage.dependents(owner["metadata"]["uid"]):
            obj = self.storage.find(dep)
            if obj is not None and self._owners_gone(obj):
                self._delete(dep)

    def _owners_gone(self, obj: dict) -> bool:
        refs = obj["metadata"].get("ownerReferences") or []
        return bool(refs) and all(self.storage.key_of_uid(ref.get("uid", "")) is None for ref in refs)

    def _delete(self, key: Key) -> None:
        obj = self.storage.find(key)
        if obj is not None:
            self.delete_background(key, obj)

    def _drop_finalizer(self, key: Key, finalizer: str) -> None:
        obj = self.storage.find(key)
        if obj is not None and finalizer in (obj["metadata"].get("finalizers") or []):
            self.drop_finalizer(obj, finalizer)

    def _progress_foreground(self, key: Key) -> None:
        """A foreground-deleting owner loses its finalizer once its dependents are gone."""
        obj = self.storage.find(key)
        if obj is None:
            return
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or []) \
                and not self.storage.dependents(meta["uid"]):
            self._drop_finalizer(key, FOREGROUND)

    def _orphan(self, key: Key, uid: str) -> None:
        for dep in self.storage.dependents(uid):
            obj = self.storage.find(dep)
            if obj is None:
                continue
            new = clone(obj)
            refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            self.verbs.write_update(new)
        self._drop_finalizer(key, ORPHAN)


def _key(change: Change) -> Key:
    obj = change.new if change.new is not None else change.old
    assert obj is not None
    return (change.group_kind[0], change.group_kind[1], obj["metadata"].get("namespace") or "",
            obj["metadata"]["name"])
