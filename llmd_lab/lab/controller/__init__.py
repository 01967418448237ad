"""The lab's controllers: KServe's LLMInferenceService reconciler and the Kubernetes workload controllers.

Pure rendering (what children an LLMInferenceService has, what its status says) lives in ``llmisvc``;
the reconcile loops that watch the store and apply it live in ``base`` and one module per controller.
"""

from __future__ import annotations

from llmd_lab.lab.context import LabComponent, LabContext
from llmd_lab.lab.controller import kueue_webhook
from llmd_lab.lab.controller.endpoints import EndpointsController
from llmd_lab.lab.controller.gateway import GatewayStatusController, HTTPRouteStatusController
from llmd_lab.lab.controller.job import JobController
from llmd_lab.lab.controller.leaderworkerset import LeaderWorkerSetController
from llmd_lab.lab.controller.llmisvc.presets import GlobalConfig
from llmd_lab.lab.controller.llmisvc.reconciler import LLMInferenceServiceController
from llmd_lab.lab.controller.llmisvc.webhook import LLMInferenceServiceValidator
from llmd_lab.lab.controller.persistentvolume import PersistentVolumeController
from llmd_lab.lab.controller.ttlafterfinished import TTLAfterFinishedController
from llmd_lab.lab.controller.workloads import DeploymentController, ReplicaSetController


def controller_manager(ctx: LabContext) -> list[LabComponent]:
    """The controller-manager: workload (Deployment, ReplicaSet, LeaderWorkerSet, Job, TTL-after-finished),
    PV binder (with the CSI provisioner), endpoint, gateway-status and KServe llmisvc controllers, and the
    RHOAI operator's Kueue label webhook where the profile enforces it, and KServe's llmisvc webhook."""
    gw = ctx.profile.gateway if ctx.profile is not None else None
    global_config = GlobalConfig(gw.name, gw.namespace) if gw is not None else GlobalConfig()
    return [
        *kueue_webhook.components(ctx),  # first, so it judges every write the other parts see
        LLMInferenceServiceValidator(),  # KServe's own validating webhook
        DeploymentController(),
        ReplicaSetController(),
        LeaderWorkerSetController(),
        JobController(),
        TTLAfterFinishedController(),
        PersistentVolumeController(),
        EndpointsController(),
        GatewayStatusController(),
        HTTPRouteStatusController(),
        LLMInferenceServiceController(global_config),
    ]
