"""Controllers that finish what a delete starts, as kube-controller-manager and apiextensions-apiserver do:
the garbage collector (ownerReferences, Background/Foreground/Orphan), the namespace controller (empties a
Terminating namespace, then removes it) and the CRD controllers (serve a CRD's resources while it exists,
delete its instances before it goes).

Each one observes storage's committed changes (storage.py) and writes only through the REST verbs, so its
writes are validated, admitted and watched like anyone else's. :func:`start_lifecycle_controllers` is the
one place they are wired.
"""

from __future__ import annotations

from llmd_lab.lab.apiserver.lifecycle.base import LifecycleController
from llmd_lab.lab.apiserver.lifecycle.crd import CRDController
from llmd_lab.lab.apiserver.lifecycle.garbagecollector import GarbageCollector
from llmd_lab.lab.apiserver.lifecycle.namespace import NamespaceController
from llmd_lab.lab.apiserver.rest import RestVerbs

__all__ = ["CRDController", "GarbageCollector", "LifecycleController", "NamespaceController", "start_lifecycle_controllers"]


def start_lifecycle_controllers(verbs: RestVerbs) -> None:
    """Register the three controllers with ``verbs``' storage (CRDs already stored are served at once)."""
    for controller in (CRDController(verbs), GarbageCollector(verbs), NamespaceController(verbs)):
        controller.start()
