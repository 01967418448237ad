"""The API server's store as the rest of the lab uses it: REST verbs over storage, with the validating
admission chain and the lifecycle controllers wired in.

The jobs live in their own modules, as in kube-apiserver: storage.py (persistence, indexes,
resourceVersion, watch history), rest.py and patchverbs.py (the verbs), strategy.py and admission.py (mutate,
validate, validating webhooks), lifecycle/ (garbage collection, namespace deletion, CRD cleanup as
controllers). Authentication and authorization sit in front of the verbs, in the HTTP layer (access.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from llmd_lab.lab.apiserver.admission import ValidatingWebhook
from llmd_lab.lab.apiserver.bus import WatchEvent, clone
from llmd_lab.lab.apiserver.lifecycle import start_lifecycle_controllers
from llmd_lab.lab.apiserver.patchverbs import patch_object, scale_of, write_scale
from llmd_lab.lab.apiserver.registry import ResourceRegistry
from llmd_lab.lab.apiserver.rest import RestVerbs
from llmd_lab.lab.apiserver.storage import DEFAULT_HISTORY_BYTES, Storage

__all__ = ["Store", "WatchEvent"]

SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Store(RestVerbs):
    """See the module docstring; the verbs are documented on :class:`RestVerbs`."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        registry: ResourceRegistry | None = None,
        history: int = 10_000,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        seed_namespaces: bool = True,
        graceful_pod_deletion: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Open (or create) the store at ``path``; ``":memory:"`` keeps nothing after ``close()``."""
        super().__init__(Storage(path, history=history, history_bytes=history_bytes),
                         registry or ResourceRegistry(), graceful_pod_deletion=graceful_pod_deletion, clock=clock)
        # in-process TokenReview (the gateway's AuthPolicy asks it, as Authorino asks kube-apiserver); set by
        # the HTTP app from its authenticator (access.py)
        self.token_reviewer: Callable[[str], bool] | None = None
        start_lifecycle_controllers(self)
        if seed_namespaces:
            for ns in SEED_NAMESPACES:
                if self.storage.find(("", "Namespace", "", ns)) is None:
                    self.write_create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def close(self) -> None:
        self.storage.close()

    def register_validating_webhook(self, webhook: ValidatingWebhook) -> Callable[[], None]:
        """Have ``webhook`` judge matching creates/updates/patches (dry-run too) before they are stored.

        Returns the function that unregisters it. A denial is raised as the 4xx ``ApiError`` kube-apiserver
        returns for a webhook denial, and nothing of the request is applied."""
        return self.admission.register(webhook)

    # ------------------------------------------------------------------ patch, apply, scale
    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        patch_type: str,
        subresource: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        copy: bool = True,
    ) -> dict:
        """Apply a patch (``application/merge-patch+json`` etc., or the short names merge/json/strategic/apply);
        ``subresource`` "status" or "scale" patches that subresource (the scale patch returns the Scale)."""
        rt = self.type_of(api_version, kind)
        self._stored_type(rt)
        result = patch_object(self, rt, name, namespace, patch, patch_type, subresource, dry_run=dry_run,
                              field_manager=field_manager)
        return clone(result) if copy else result

    async def get_scale(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
        """The ``autoscaling/v1`` Scale of an object whose kind has the scale subresource."""
        rt = self.type_of(api_version, kind)
        return scale_of(rt, self.stored(rt, name, namespace))

    async def update_scale(self, api_version: str, kind: str, name: str, namespace: str | None, scale: dict, *,
                           dry_run: bool = False) -> dict:
        """PUT .../scale: set the replicas; returns the new Scale."""
        rt = self.type_of(api_version, kind)
        return write_scale(self, rt, name, namespace, scale, dry_run=dry_run)
