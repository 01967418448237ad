"""The container runtime of the simulated nodes: one ``PodWorker`` per bound pod.

A worker walks the pod through the lifecycle stages (stages.yaml): sandbox + IP, image pulls, init
containers to completion, then each container's program with restarts and CrashLoopBackOff, readiness
from its probe, and a status written back to the API server whenever what ``kubectl`` shows changes.

About 580 lines on purpose: the lifecycle (restarts as ``restartPolicy`` says), the probes and the status
writer share one pod's state and one set of tasks; what a container runs is already apart (``registry``,
``programs``, ``stages``, ``claims``, ``volumes``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from llmd_lab.lab.apiserver.errors import ApiError
from llmd_lab.lab.kubelet import claims, dns, probes, programs, registry, stages, volumes
from llmd_lab.lab.kubelet.logs import LogBuffer

if TYPE_CHECKING:
    from llmd_lab.lab.kubelet.kubelet import Kubelet
from llmd_lab.lab.kubelet.registry import Launch, ProcessExitError, Running

log = logging.getLogger("llmd_lab.lab.kubelet")


def host_ip(node_name: str) -> str:
    """AWS private DNS names carry the node's address: ``ip-10-0-49-10.…`` → ``10.0.49.10``."""
    head = node_name.split(".", 1)[0]
    if head.startswith("ip-"):
        return head[3:].replace("-", ".")
    return "10.0.0.1"


@dataclass
class ContainerRunner:
    spec: dict[str, Any]
    init: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    completed: bool = False
    container_id: str = ""
    logs: LogBuffer = field(default_factory=LogBuffer)
    previous: LogBuffer | None = None
    handle: Running | None = None
    program: str = ""
    serving: asyncio.Event = field(default_factory=asyncio.Event)  # set once the program listens
    files: dict[str, bytes] = field(default_factory=dict)  # its Secret/ConfigMap volumes, as last projected
    mounts: dict[str, Path] = field(default_factory=dict)  # mountPath → the lab directory of a claim it mounts
    exit_code: int | None = None  # set once it exited for good (the pod's restartPolicy does not restart it)

    def set_handle(self, handle: Running) -> None:
        self.handle = handle
        self.serving.set()

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def sidecar(self) -> bool:
        return self.init and self.spec.get("restartPolicy") == "Always"

    def status(self) -> dict[str, Any]:
        image = self.spec.get("image", "")
        out: dict[str, Any] = {
            "name": self.name,
            "image": image,
            "imageID": f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}" if image else "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


class PodWorker:
    """Runs one pod on its node until it is deleted."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any], node: dict[str, Any] | None, ip: str) -> None:
        self.kubelet = kubelet
        self.ctx = kubelet.ctx
        self.pod = pod
        self.node = node
        self.ip = ip
        self.node_name = pod["spec"]["nodeName"]
        spec = pod["spec"]
        self.inits = [ContainerRunner(c, init=True) for c in spec.get("initContainers") or []]
        self.mains = [ContainerRunner(c) for c in spec.get("containers") or []]
        self.start_time = self._now()
        self.phase = "Pending"
        self.pod_conditions: dict[str, str] = {}
        self._tasks: list[asyncio.Task] = []
        self._dirty = asyncio.Event()
        self._stopping = False
        self._written: dict[str, Any] | None = None

    # ---- identity
    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.pod["metadata"]["name"]

    def runners(self) -> list[ContainerRunner]:
        return [*self.inits, *self.mains]

    def runner(self, name: str) -> ContainerRunner | None:
        return next((r for r in self.runners() if r.name == name), None)

    def _now(self) -> str:
        return self.ctx.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def _fields(self, runner: ContainerRunner | None = None, **extra: Any) -> dict[str, Any]:
        f = {"pod": self.name, "namespace": self.namespace, "uid": self.pod["metadata"].get("uid", ""),
             "now": self._now(), "node": self.node_name}
        if runner is not None:
            f.update(container=runner.name, image=runner.spec.get("image", ""),
                     started_at=(runner.state.get("running") or {}).get("startedAt", f["now"]))
        f.update(extra)
        return f

    # ---- lifecycle
    async def start(self) -> None:
        admitted = stages.render("pod-admitted", self._fields())
        self.phase = admitted.pod["phase"]
        self.pod_conditions = dict(admitted.pod["conditions"])
        for r in self.inits:
            r.state = dict(admitted.init or {})
        for r in self.mains:
            r.state = dict(admitted.container or {})
        self._tasks.append(asyncio.create_task(self._writer(), name=f"kubelet-status-{self.name}"))
        self._tasks.append(asyncio.create_task(self._run(), name=f"kubelet-pod-{self.name}"))
        self._dirty.set()

    def _grace_s(self) -> float:
        """The pod's grace period (the deletion's, else ``terminationGracePeriodSeconds``, default 30 s) in
        the lab's wall-clock seconds."""
        meta, spec = self.pod.get("metadata") or {}, self.pod.get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds", 30))
        seconds = float(grace if isinstance(grace, int | float) else 30) / max(self.ctx.time_scale, 1e-9)
        return max(seconds, 0.0)

    async def stop(self, *, events: bool = True) -> None:
        self._stopping = True
        for r in self.runners():
            if r.handle is not None:
                if events:
                    await self._events(stages.render("killing", self._fields(r)).events)
                # SIGTERM, then SIGKILL once the pod's termination grace period is over: a vLLM replica
                # finishes its open streams meanwhile (uvicorn's graceful shutdown), then `kill` cuts the rest
                stopping = asyncio.ensure_future(r.handle.stop())
                done, _ = await asyncio.wait({stopping}, timeout=self._grace_s())
                kill = getattr(r.handle, "kill", None)
                if not done and kill is not None:
                    with contextlib.suppress(Exception):
                        await kill()
                with contextlib.suppress(Exception):
                    await stopping
                r.handle = None
            r.logs.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def _run(self) -> None:
        try:
            await self._mount_volumes()
            for r in self.inits:
                await self._pull(r)
                if r.sidecar:
                    self._tasks.append(asyncio.create_task(self._container_loop(r)))
                    await self._wait_started(r)
                else:
                    await self._run_init(r)
            self.pod_conditions["Initialized"] = "True"
            self._dirty.set()
            for r in self.mains:
                await self._pull(r)
            for r in self.mains:
                self._tasks.append(asyncio.create_task(self._container_loop(r)))
        except asyncio.CancelledError:
            raise
        except ProcessExitError:
            return  # an init container failed for good: no main container starts
        except Exception:
            log.exception("pod %s/%s: kubelet worker failed", self.namespace, self.name)

    async def _mount_volumes(self) -> None:
        """Wait until every Secret/ConfigMap volume can be set up (``FailedMount`` events meanwhile): no
        container starts before, as the kubelet's volume manager holds the pod in ContainerCreating."""
        while not self._stopping:
            try:
                await volumes.check_pod_volumes(self.ctx.store, self.pod)
                await claims.check_claims(self.ctx.store, self.pod)
                return
            except volumes.MountError as exc:
                await self._events([{"type": "Warning", "reason": "FailedMount", "message": str(exc)}])
            await self.ctx.clock.sleep(_MOUNT_RETRY_S)

    async def _project_files(self, r: ContainerRunner) -> None:
        """Refresh the container's mounted files at each start; a Secret deleted since keeps its last
        content, as the kubelet leaves an already set-up volume in place."""
        with contextlib.suppress(volumes.MountError):
            r.files = await volumes.container_files(self.ctx.store, self.pod, r.spec)
        r.mounts = await claims.container_mounts(self.ctx.store, self.ctx.home, self.pod, r.spec)

    async def _wait_started(self, r: ContainerRunner) -> None:
        while not r.started and not self._stopping:
            await asyncio.sleep(0.01)

    async def _pull(self, r: ContainerRunner) -> None:
        image = r.spec.get("image", "")
        key = (self.node_name, image)
        if key in self.kubelet.pulled:
            await self._events(stages.render("image-present", self._fields(r)).events)
            return
        seconds = stages.pull_seconds(image)
        rendered = stages.render("image-pull", self._fields(r, pull_seconds=f"{seconds:.3f}",
                                                            image_bytes=stages.image_bytes(image)))
        await self._events(rendered.events[:1])
        await self.ctx.clock.sleep(seconds)
        self.kubelet.pulled.add(key)
        await self._events(rendered.events[1:])

    async def _run_init(self, r: ContainerRunner) -> None:
        """Run an init container to completion; a failure restarts it after the CrashLoopBackOff delay
        (Init:Error, then Init:CrashLoopBackOff in ``kubectl get``), as the kubelet does for restartPolicy
        Always/OnFailure pods."""
        while not self._stopping:
            if r.restart_count:
                await self._events(stages.render("image-present", self._fields(r)).events)
            started = stages.render("container-started", self._fields(r))
            r.state, r.started = started.container, True
            r.container_id = f"cri-o://{uuid.uuid4().hex}{uuid.uuid4().hex}"
            await self._events(started.events)
            self._dirty.set()
            try:
                await self._init_program(r, started.delay_seconds)
            except ProcessExitError as failure:
                r.started = False
                if self.pod["spec"].get("restartPolicy", "Always") == "Never":
                    self._exited(r, failure)  # kuberuntime: a failed init container of a Never pod fails it
                    raise
                await self._fail_and_back_off(r, failure)
                continue
            done = stages.render("container-completed",
                                 self._fields(r, started_at=r.state["running"]["startedAt"]))
            r.state, r.started, r.completed, r.ready = done.container, False, True, False
            r.logs.close()
            self._dirty.set()
            return

    async def _init_program(self, r: ContainerRunner, delay_seconds: float) -> None:
        """The init container's process: a registered job (the storage-initializer) or the modelcar's echo."""
        launch = self._launch(r, await self._secrets(r))
        job = registry.JOBS.get(r.program)
        if isinstance(launch, ProcessExitError):
            raise launch
        if job is None:
            r.logs.write(f"Pre-fetching modelcar {r.spec.get('image', '')}: Done!")
        await self.ctx.clock.sleep(delay_seconds)
        if job is not None:
            await job(launch, r.set_handle)

    async def _secrets(self, r: ContainerRunner) -> dict[tuple[str, str], str]:
        """The values of the Secret keys the container's env reads (base64-decoded as the kubelet mounts them);
        a missing Secret or key leaves the variable empty (*not modelled*: CreateContainerConfigError)."""
        values: dict[tuple[str, str], str] = {}
        for name, key in programs.secret_key_refs(r.spec):
            try:
                secret = await self.ctx.store.get("v1", "Secret", name, self.namespace)
            except ApiError:
                continue
            raw = (secret.get("data") or {}).get(key)
            if raw is not None:
                values[(name, key)] = base64.b64decode(raw).decode(errors="replace")
        return values

    async def _fail_and_back_off(self, r: ContainerRunner, failure: ProcessExitError) -> None:
        """A container exited: show it terminated (Error), then waiting in CrashLoopBackOff for the delay."""
        r.handle = None
        r.ready = False
        r.started = False
        failed = stages.render("container-failed", self._fields(
            r, reason=failure.reason, exit_code=failure.code, message=failure.message[-1024:],
            started_at=(r.state.get("running") or {}).get("startedAt", self._now())))
        if not failed.container["terminated"].get("message"):
            failed.container["terminated"].pop("message", None)
        r.state = failed.container
        r.logs.close()
        r.previous, r.logs = r.logs, LogBuffer()
        self._dirty.set()
        r.restart_count += 1
        r.last_state = failed.container
        backoff = stages.backoff_seconds(r.restart_count)
        waiting = stages.render("crash-loop-back-off", self._fields(r, backoff=stages.format_duration(backoff)))
        await asyncio.sleep(0.05)  # let clients see Error before CrashLoopBackOff
        r.state = waiting.container
        self._dirty.set()
        await self._events(waiting.events)
        await self.ctx.clock.sleep(backoff)

    # ---- a container: start, run, crash, back off, restart
    async def _container_loop(self, r: ContainerRunner) -> None:
        first = True
        while not self._stopping:
            if not first:
                await self._events(stages.render("image-present", self._fields(r)).events)
            first = False
            started = stages.render("container-started", self._fields(r))
            await self.ctx.clock.sleep(started.delay_seconds)
            r.state, r.started, r.ready = started.container, True, False
            r.container_id = f"cri-o://{uuid.uuid4().hex}{uuid.uuid4().hex}"
            self.phase = "Running"
            await self._events(started.events)
            self._dirty.set()
            await self._project_files(r)
            launch = self._launch(r)  # before the probe task: it must know whether the program listens
            probe = asyncio.create_task(self._readiness(r))
            program = asyncio.create_task(self._run_program(r, launch))
            liveness = asyncio.create_task(self._liveness(r, program))
            try:
                await program
                failure = ProcessExitError(0, "Completed")
            except ProcessExitError as exc:
                failure = exc
            except asyncio.CancelledError:
                if not program.cancelled() or asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    for task in (probe, liveness, program):
                        task.cancel()
                    # the process has exited only once its clean-up ran (listeners closed): the kubelet
                    # releases the pod IP after this, as IPAM does at sandbox teardown
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await asyncio.wait({probe, liveness, program})
                    raise
                # killed by the liveness probe
                if r.handle is not None:
                    with contextlib.suppress(Exception):
                        await r.handle.stop()
                failure = ProcessExitError(137, "Error", "")
            except Exception as exc:  # a simulator bug: show it like a crashed process
                log.exception("pod %s/%s container %s crashed", self.namespace, self.name, r.name)
                r.logs.write(f"Traceback (most recent call last): {type(exc).__name__}: {exc}")
                failure = ProcessExitError(1, "Error", str(exc))
            for task in (probe, liveness):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._stopping:
                return
            if not restarts(self.pod["spec"].get("restartPolicy", "Always"), failure.code):
                self._exited(r, failure)
                return
            await self._fail_and_back_off(r, failure)

    def _exited(self, r: ContainerRunner, failure: ProcessExitError) -> None:
        """The container exited and its pod's restartPolicy keeps it down: it stays terminated (Completed or
        Error), and once every container has, the pod's phase is terminal (status() decides which)."""
        r.handle, r.ready, r.started = None, False, False
        if failure.code == 0:
            r.state = stages.render("container-completed", self._fields(
                r, started_at=(r.state.get("running") or {}).get("startedAt", self._now()))).container
        else:
            r.state = stages.render("container-failed", self._fields(
                r, reason=failure.reason, exit_code=failure.code, message=failure.message[-1024:],
                started_at=(r.state.get("running") or {}).get("startedAt", self._now()))).container
            if not r.state["terminated"].get("message"):
                r.state["terminated"].pop("message", None)
        r.exit_code = failure.code
        r.logs.close()
        self._dirty.set()

    def _launch(self, r: ContainerRunner,
                secrets: dict[tuple[str, str], str] | None = None) -> Launch | ProcessExitError:
        """The process a container start runs: its argv and env, and which program that is (``r.program``);
        a command that cannot even be parsed (``sh -c`` with an unbalanced quote) exits 1 like a shell would."""
        profile = self.ctx.profile
        env = programs.container_env(self.pod, r.spec, pod_ip=self.ip, node=self.node,
                                     time_scale=self.ctx.time_scale, secrets=secrets,
                                     download_mbps=profile.model_download_mbps if profile else 0.0)
        try:
            argv = programs.container_argv(r.spec, env)
        except ValueError as exc:
            r.program = programs.IDLE
            return ProcessExitError(1, "Error", f"/bin/sh: syntax error: {exc}")
        r.program = programs.program_for(r.spec, argv, init=r.init)
        r.serving.clear()
        return Launch(argv=argv, host=self.ip, env=env, log=r.logs.write, resolve_host=self._resolve_host,
                      source=self.kubelet.source, read_file=volumes.reader(r.files), mounts=dict(r.mounts))

    async def _run_program(self, r: ContainerRunner, launch: Launch | ProcessExitError) -> None:
        if isinstance(launch, ProcessExitError):
            raise launch
        main = registry.PROGRAMS.get(r.program)
        if main is None:
            await asyncio.Event().wait()  # an idle process: runs until the pod goes away
            return
        await registry.run(main, launch, r.set_handle)

    async def _resolve_host(self, name: str) -> str | None:
        """The pod's cluster DNS (ClusterFirst): Services and LeaderWorkerSet pod hostnames by name."""
        return await dns.resolve(self.ctx.store, name, self.pod["metadata"]["namespace"])

    # ---- readiness
    async def _readiness(self, r: ContainerRunner) -> None:
        probe = r.spec.get("readinessProbe")
        if not probe:
            if registry.serves(r.program):
                await r.serving.wait()
            r.ready = True
            self._dirty.set()
            return
        timing = probes.ProbeTiming.of(probe)
        await self.ctx.clock.sleep(timing.initial_delay_s)
        failures = 0
        async with probes.probe_client(probe) as client:
            while True:
                ok, detail = await self._probe_once(client, r, probe)
                if ok:
                    failures = 0
                    if not r.ready:
                        r.ready = True
                        self._dirty.set()
                else:
                    failures += 1
                    await self._events(stages.render("readiness-probe-failed", self._fields(r, detail=detail)).events)
                    if r.ready and failures >= timing.failure_threshold:
                        r.ready = False
                        self._dirty.set()
                await self.ctx.clock.sleep(timing.period_s)

    async def _liveness(self, r: ContainerRunner, program: asyncio.Task) -> None:
        """Kill the program after ``failureThreshold`` failed liveness probes (it is then restarted)."""
        probe = r.spec.get("livenessProbe")
        if not probe:
            return
        timing = probes.ProbeTiming.of(probe)
        await self.ctx.clock.sleep(timing.initial_delay_s)
        failures = 0
        async with probes.probe_client(probe) as client:
            while not program.done():
                ok, detail = await self._probe_once(client, r, probe)
                failures = 0 if ok else failures + 1
                if not ok:
                    await self._events(stages.render("liveness-probe-failed", self._fields(r, detail=detail)).events)
                if failures >= timing.failure_threshold:
                    await self._events(stages.render("liveness-kill", self._fields(r)).events)
                    program.cancel()
                    return
                await self.ctx.clock.sleep(timing.period_s)

    async def _probe_once(self, client: httpx.AsyncClient, r: ContainerRunner, probe: dict) -> tuple[bool, str]:
        return await probes.probe_to_completion(client, self.ip, r.spec, probe)

    # ---- status
    def status(self) -> dict[str, Any]:
        inits_done = all(r.completed or (r.sidecar and r.started) for r in self.inits)
        mains_ready = all(r.ready for r in self.mains) and inits_done
        sidecars_ready = all(r.ready for r in self.inits if r.sidecar)
        conds = dict(self.pod_conditions)
        conds["Initialized"] = "True" if inits_done else "False"
        conds["ContainersReady"] = "True" if mains_ready and sidecars_ready else "False"
        conds["Ready"] = conds["ContainersReady"]
        phase = self._phase()
        previous = {c["type"]: c for c in (self.pod.get("status") or {}).get("conditions") or []}
        now = self._now()
        conditions = []
        for type_ in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"):
            status = conds.get(type_, "True")
            old = previous.get(type_)
            cond = {"type": type_, "status": status, "lastProbeTime": None,
                    "lastTransitionTime": old.get("lastTransitionTime") if old and old.get("status") == status else now}
            if status == "False" and type_ in ("Ready", "ContainersReady") and phase in ("Succeeded", "Failed"):
                cond["reason"] = "PodCompleted" if phase == "Succeeded" else "PodFailed"  # status/generate.go
            elif status == "False" and type_ in ("Ready", "ContainersReady"):
                not_ready = [r.name for r in self.mains if not r.ready]
                cond["reason"] = "ContainersNotReady"
                cond["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
            elif status == "False" and type_ == "Initialized":
                cond["reason"] = "ContainersNotInitialized"
                cond["message"] = "containers with incomplete status: [" + " ".join(
                    r.name for r in self.inits if not r.completed and not r.sidecar) + "]"
            conditions.append(cond)
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": host_ip(self.node_name),
            "hostIPs": [{"ip": host_ip(self.node_name)}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.start_time,
            "containerStatuses": [r.status() for r in self.mains],
            "qosClass": (self.pod.get("status") or {}).get("qosClass", "BestEffort"),
        }
        if self.inits:
            status["initContainerStatuses"] = [r.status() for r in self.inits]
        return status

    def _phase(self) -> str:
        """kubelet getPhase (pkg/kubelet/kubelet_pods.go): terminal once an init container failed for good or
        every container exited for good (Succeeded only if all exited 0); Running once any container ran."""
        if any(r.exit_code not in (None, 0) for r in self.inits):
            return "Failed"
        if self.mains and all(r.exit_code is not None for r in self.mains):
            return "Succeeded" if all(r.exit_code == 0 for r in self.mains) else "Failed"
        return "Running" if any(r.started or r.restart_count or r.exit_code is not None for r in self.mains) \
            else "Pending"

    async def _writer(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await asyncio.sleep(0.01)  # coalesce bursts of changes
            status = self.status()
            comparable = _without_times(status)
            if comparable == self._written:
                continue
            for _ in range(5):
                try:
                    live = await self.ctx.store.get("v1", "Pod", self.name, self.namespace)
                except ApiError as exc:
                    if exc.code == 404:
                        return
                    raise
                if live["metadata"].get("uid") != self.pod["metadata"].get("uid"):
                    return
                self.pod = live
                live["status"] = status
                try:
                    await self.ctx.store.update_status(live)
                    self._written = comparable
                    break
                except ApiError as exc:
                    if exc.code == 404:
                        return
                    if exc.code != 409:
                        log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, exc.message)
                        break

    async def _events(self, events: list[dict[str, str]]) -> None:
        for e in events:
            with contextlib.suppress(ApiError):
                await self.ctx.events.record(self.pod, e["type"], e["reason"], e["message"], "kubelet")


def restarts(policy: str, exit_code: int) -> bool:
    """Whether the kubelet restarts a container that exited with ``exit_code`` under the pod's restartPolicy
    (kubelet ``ShouldContainerBeRestarted``): Always restarts, OnFailure only non-zero exits, Never none."""
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


_MOUNT_RETRY_S = 2.0
"""How often a pod whose Secret/ConfigMap is missing retries the mount (lab seconds)."""


def _without_times(status: dict[str, Any]) -> dict[str, Any]:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]]
    return out

