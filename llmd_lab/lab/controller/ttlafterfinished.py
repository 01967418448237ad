"""The TTL-after-finished controller (kubernetes 1.32 ``pkg/controller/ttlafterfinished``): a finished Job
with ``spec.ttlSecondsAfterFinished`` is deleted that many (simulated) seconds after its Complete/Failed
condition's ``lastTransitionTime``, with foreground propagation and a UID precondition, so its pods go
first and a re-created Job of the same name is never hit.
"""

from __future__ import annotations

import asyncio

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.controller.base import Reconciler, Watch, self_key
from llmd_lab.lab.controller.job import finished, parse_time


class TTLAfterFinishedController(Reconciler):
    name = "ttl-after-finished-controller"
    watches = (Watch("batch/v1", "Job", self_key),)

    async def reconcile(self, namespace: str, name: str) -> bool | None:
        job = await self.get_or_none("batch/v1", "Job", name, namespace)
        if job is None:
            return False
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        done = finished(job)
        if ttl is None or done is None or job["metadata"].get("deletionTimestamp"):
            return None
        age_s = (self.ctx.clock.now() - parse_time(done["lastTransitionTime"])).total_seconds()
        left_s = self.ctx.clock.real_seconds(float(ttl)) - age_s
        if left_s > 0:
            asyncio.get_running_loop().call_later(left_s, self.enqueue, (namespace, name))
            return None
        try:
            await self.store.delete("batch/v1", "Job", name, namespace, propagation="Foreground",
                                    preconditions={"uid": job["metadata"]["uid"]})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
        return None
