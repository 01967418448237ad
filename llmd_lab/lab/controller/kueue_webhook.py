"""RHOAI's Kueue label validator: the webhook behind the seeds' "missing required label" known issue.

The OpenShift AI operator (opendatahub-operator ``internal/webhook/kueue``) installs validating webhooks for
the workloads Kueue can manage, among them ``kserve-llmisvc-kueuelabels-validator.opendatahub.io`` for
``llminferenceservices`` and ``kserve-isvc-kueuelabels-validator.opendatahub.io`` for ``inferenceservices``
(CREATE and UPDATE). In a namespace labelled ``kueue.openshift.io/managed=true`` (or the legacy
``kueue-managed=true``) a workload without ``kueue.x-k8s.io/queue-name`` is denied::

    admission webhook "kserve-llmisvc-kueuelabels-validator.opendatahub.io" denied the request:
    Kueue label validation failed: missing required label "kueue.x-k8s.io/queue-name"

So the LLMInferenceService itself is refused (nothing is created, ``kubectl describe`` finds nothing); with
the label, KServe copies it onto the workload's pods and Kueue admits them against the LocalQueue's
ClusterQueue quota (``llmd_lab.lab.scheduler.kueue``). Objects being deleted are let through, as upstream.
The profile's ``kueueRequiresQueueLabel`` known issue switches the webhook on (it stands for "Kueue is
Managed/Unmanaged in the DataScienceCluster", the operator's other precondition).
"""

from __future__ import annotations

from collections.abc import Callable

from llmd_lab.lab.apiserver.admission import AdmissionRequest, ValidatingWebhook
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.context import LabContext

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_NAMESPACE_LABELS = ("kueue.openshift.io/managed", "kueue-managed")  # value "true"
ISSUE = "kueueRequiresQueueLabel"
# webhook name -> the serving.kserve.io kind it validates (one webhook per resource, as the operator has)
WEBHOOKS = {
    "kserve-llmisvc-kueuelabels-validator.opendatahub.io": "LLMInferenceService",
    "kserve-isvc-kueuelabels-validator.opendatahub.io": "InferenceService",
}
GROUP = "serving.kserve.io"


def missing_label_message(labels: dict[str, str] | None) -> str | None:
    """The operator's verdict on a workload's labels: ``None`` when the queue label is set."""
    if not labels or QUEUE_LABEL not in labels:
        return f'Kueue label validation failed: missing required label "{QUEUE_LABEL}"'
    if labels[QUEUE_LABEL] == "":
        return f'Kueue label validation failed: label "{QUEUE_LABEL}" is set but empty'
    return None


def namespace_is_kueue_managed(namespace: dict | None) -> bool:
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    return any(labels.get(key) == "true" for key in MANAGED_NAMESPACE_LABELS)


class KueueLabelValidator:
    """A lab component: registers the operator's Kueue label webhooks with the store while it runs."""

    name = "kueue-label-validator"

    def __init__(self) -> None:
        self.store: Store | None = None
        self._unregister: list[Callable[[], None]] = []

    def _namespace(self, name: str | None) -> dict | None:
        if not name:
            return None
        return self.store.storage.find(("", "Namespace", "", name))  # webhooks read storage, never write

    def validate(self, request: AdmissionRequest) -> str | None:
        if (request.object.get("metadata") or {}).get("deletionTimestamp"):
            return None  # "Object marked for deletion, skipping Kueue label validation"
        if not namespace_is_kueue_managed(self._namespace(request.namespace)):
            return None
        return missing_label_message((request.object.get("metadata") or {}).get("labels"))

    async def start(self, ctx: LabContext) -> None:
        self.store = ctx.store
        for webhook_name, kind in WEBHOOKS.items():
            self._unregister.append(self.store.register_validating_webhook(ValidatingWebhook(
                name=webhook_name, group=GROUP, kinds=frozenset({kind}), validate=self.validate)))

    async def stop(self) -> None:
        while self._unregister:
            self._unregister.pop()()


def components(ctx: LabContext) -> list[KueueLabelValidator]:
    """The validator when the profile enforces the queue label, else nothing."""
    return [KueueLabelValidator()] if ctx.profile is not None and ctx.profile.issue(ISSUE) else []
