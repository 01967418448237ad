"""Creating a controller's pods, as kube-controller-manager's workload controllers share it.

The ReplicaSet controller (``pkg/controller/replicaset/replica_set.go``, ``manageReplicas``) and the Job
controller (``pkg/controller/job/job_controller.go``, ``manageJob``) create pods the same way, through
``pkg/controller/controller_utils.go``: at most 500 per sync (``burstReplicas``; the Job's
``MaxPodCreateDeletePerSync``), in slow-start batches of 1, 2, 4, … (``slowStartBatch``), stopping at the first
batch with a failure; ``RealPodControl`` records each creation as a ``SuccessfulCreate`` event and a failure as
``FailedCreate`` ("Error creating: …"), and the sync is retried with the work queue's per-item back-off. One
helper here, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.base import Reconciler
from llmd_lab.lab.controller.pods import pod_from_template
from llmd_lab.lab.controller.ratelimit import TokenBucket

BURST_REPLICAS = 500  # replica_set.go: BurstReplicas, the most creations or deletions in one sync
SLOW_START_INITIAL_BATCH = 1  # pkg/controller/controller_utils.go: SlowStartInitialBatchSize


async def slow_start_batch(count: int, create: Callable[[], Awaitable[None]],
                           initial: int = SLOW_START_INITIAL_BATCH) -> tuple[int, ApiError | None]:
    """Call ``create()`` ``count`` times in batches of 1, 2, 4, … (each batch concurrently); stop after the
    first batch with a failure. Returns (successes, first error) like kube's ``slowStartBatch``."""
    successes, remaining, batch = 0, count, min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(create() for _ in range(batch)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        successes += batch - len(failures)
        if failures:
            first = failures[0]
            if not isinstance(first, ApiError):
                raise first
            return successes, first
        remaining -= batch
        batch = min(2 * batch, remaining)
        await asyncio.sleep(0)  # one batch at a time: the API server answers between batches
    return successes, None


async def create_owned_pods(controller: Reconciler, owner: dict, count: int, active: list[dict], *,
                            finalizers: Sequence[str] = (), client_limit: TokenBucket | None = None) -> None:
    """Create ``count`` pods from ``owner``'s template in slow-start batches, appending each to ``active``.

    ``finalizers`` go on every pod (the Job's tracking finalizer); ``client_limit`` is the controller
    client's rate limit, taken before each creation. A failed batch is a ``FailedCreate`` event on the owner
    and a back-off of its key.
    """
    namespace, name = owner["metadata"]["namespace"], owner["metadata"]["name"]

    async def create() -> None:
        if client_limit is not None:
            await client_limit.take()
        pod = pod_from_template(owner["spec"]["template"], namespace=namespace, owner=owner,
                                generate_name=f"{name}-")
        if finalizers:
            pod["metadata"]["finalizers"] = list(finalizers)
        created = await controller.store.create(pod)
        active.append(created)
        await controller.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    _, error = await slow_start_batch(count, create)
    if error is not None:
        await controller.event(owner, "Warning", "FailedCreate", f"Error creating: {error.message}")
        controller.back_off((namespace, name))
