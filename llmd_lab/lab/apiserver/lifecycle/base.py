"""What every lifecycle controller shares: it observes storage's committed changes and writes back only
through the REST verbs, deleting in the background and releasing finalizers as kube-controller-manager's
controllers do through the API."""

from __future__ import annotations

from llmd_lab.lab.apiserver.bus import Change, clone
from llmd_lab.lab.apiserver.rest import RestVerbs
from llmd_lab.lab.apiserver.storage import Key


class LifecycleController:
    """Subclasses implement :meth:`observe`; :meth:`start` subscribes it to storage."""

    def __init__(self, verbs: RestVerbs) -> None:
        self.verbs = verbs
        self.storage = verbs.storage

    def start(self) -> None:
        self.storage.observe(self.observe)

    def observe(self, change: Change) -> None:
        raise NotImplementedError

    def delete_background(self, key: Key, obj: dict) -> None:
        """Delete ``obj`` with ``propagationPolicy=Background``; one whose kind is no longer served (its CRD
        is gone) is removed outright, since nothing can serve a delete for it."""
        rt = self.verbs.registry.storage_type(key[0], key[1])
        if rt is None:
            self.verbs.remove(key)
        else:
            self.verbs.delete_stored(key, obj, rt, "Background", None)

    def drop_finalizer(self, obj: dict, finalizer: str) -> None:
        """Write ``obj`` back without ``finalizer`` (and without an empty ``finalizers`` list)."""
        new = clone(obj)
        new["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        if not new["metadata"]["finalizers"]:
            new["metadata"].pop("finalizers")
        self.verbs.write_update(new)
