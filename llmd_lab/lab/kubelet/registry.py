"""The kubelet's program registry: for each simulated program a container can run (chosen by
:func:`llmd_lab.lab.kubelet.programs.program_for`), how to start it and wait for it to exit.

The programs themselves live in ``llmd_lab.sim`` (vLLM, the EPP, the llm-d routing sidecar) and never import
the lab; this is the one place that knows how the kubelet hands them an address, an environment, a log and
the cluster's DNS and objects. A container whose program is not registered idles until its pod goes away.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from llmd_lab.lab.kubelet import programs
from llmd_lab.sim.source import ResourceSource


class ProcessExitError(Exception):
    """A simulated process exited: ``code`` and ``reason`` become the container's ``terminated`` state."""

    def __init__(self, code: int, reason: str = "Error", message: str = "") -> None:
        super().__init__(message or reason)
        self.code = code
        self.reason = reason
        self.message = message


class Running(Protocol):
    """What a started program leaves behind: the kubelet stops it when the container is killed."""

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Launch:
    """What the container runtime gives a program: its argv, its pod's IP, env, log and cluster view."""

    argv: list[str]
    host: str
    env: dict[str, str]
    log: Callable[[str], None]
    resolve_host: Callable[[str], Awaitable[str | None]]
    source: ResourceSource
    read_file: Callable[[str], bytes] | None = None
    """The container's view of its Secret/ConfigMap volumes (``--ssl-certfile`` and the like)."""
    mounts: dict[str, Path] = field(default_factory=dict)
    """mountPath → the lab directory of each PersistentVolumeClaim the container mounts."""


Started = Callable[[Running], None]
ProgramMain = Callable[[Launch, Started], Awaitable[None]]
"""Start the program, call ``started(handle)`` once it serves, return or raise :class:`ProcessExitError` when it
exits (a server that never exits by itself waits until the kubelet cancels it)."""


async def run(main: ProgramMain, launch: Launch, started: Started) -> None:
    """Run one program as its container's process. A ``sys.exit`` in it (uvicorn's when it cannot bind) ends
    that process with its status, never the lab: caught inside the task, because asyncio re-raises a
    SystemExit out of the event loop (and so out of the whole lab process)."""
    try:
        await main(launch, started)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        launch.log(f"process exited with status {code}")
        raise ProcessExitError(code, "Completed" if code == 0 else "Error") from None


async def _forever() -> None:
    await asyncio.Event().wait()


async def run_vllm(launch: Launch, started: Started) -> None:
    from llmd_lab.sim.vllm.server import StartupError, serve

    try:
        replica = await serve(launch.argv, host=launch.host, port=None, env=launch.env, log=launch.log,
                              resolve_host=launch.resolve_host, read_file=launch.read_file)
    except StartupError as exc:
        raise ProcessExitError(exc.exit_code, "Error", exc.message) from exc
    started(replica)
    code = await replica.wait()
    raise ProcessExitError(code, "Completed" if code == 0 else "Error")


async def run_epp(launch: Launch, started: Started) -> None:
    from llmd_lab.sim.epp.server import serve

    args = launch.argv[1:] if launch.argv and not launch.argv[0].startswith("-") else launch.argv
    try:
        handle = await serve(args, host=launch.host, env=launch.env, source=launch.source, log=launch.log,
                             model_servers_tls=True)
    except Exception as exc:
        raise ProcessExitError(1, "Error", str(exc)) from exc
    started(handle)
    await _forever()


async def run_routing_sidecar(launch: Launch, started: Started) -> None:
    from llmd_lab.sim.routing_sidecar import RoutingSidecar

    sidecar = RoutingSidecar(launch.argv, launch.host, launch.log, read_file=launch.read_file)
    try:
        await sidecar.start()
    except (OSError, ssl.SSLError, ValueError) as exc:  # Go's tls.LoadX509KeyPair failing: the proxy exits
        launch.log(f"failed to start proxy server: {exc}")
        raise ProcessExitError(1, "Error", str(exc)) from exc
    started(sidecar)
    await _forever()


def _pod_scratch(launch: Launch) -> Path:
    """The pod's own filesystem on the lab's host, for a client's files outside its claims."""
    return Path(tempfile.gettempdir()) / "llmd-lab-files" / launch.env.get("POD_NAMESPACE", "") / launch.env.get("POD_NAME", "")


async def run_guidellm(launch: Launch, started: Started) -> None:
    """The real GuideLLM CLI (a benchmark Job's container); it exits, so the pod completes or fails. Its
    files under a claim's mount path go to that volume's lab directory, any other absolute path to a scratch
    directory of the pod (the container's own filesystem)."""
    from llmd_lab.sim import guidellm

    scratch = _pod_scratch(launch)
    code = await guidellm.run(launch.argv, launch.env, launch.log, scratch, mounts=launch.mounts)
    raise ProcessExitError(code, "Completed" if code == 0 else "Error")


async def run_kit_runner(launch: Launch, started: Started) -> None:
    """The kit's traffic runner (``python -m llmd_lab.traffic``, the traffic-runner Job) from the kit copy on
    the claim; like GuideLLM, a client that exits, with its files on the claim's volume."""
    from llmd_lab.sim import kit_runner

    scratch = _pod_scratch(launch)
    code = await kit_runner.run(launch.argv, launch.env, launch.log, scratch, mounts=launch.mounts)
    raise ProcessExitError(code, "Completed" if code == 0 else "Error")


async def run_storage_initializer(launch: Launch, started: Started) -> None:
    from llmd_lab.sim.storage_initializer import InitializerExitError, run

    try:
        await run(launch.argv, launch.env, launch.log)
    except InitializerExitError as exc:
        # no terminationMessagePolicy on KServe's init container: the reason is in its log, not the status
        raise ProcessExitError(exc.code, "Error", "") from exc


JOBS: dict[str, ProgramMain] = {programs.STORAGE_INITIALIZER: run_storage_initializer}
"""Programs that run to completion (init containers): returning is exit 0."""

PROGRAMS: dict[str, ProgramMain] = {
    programs.VLLM: run_vllm,
    programs.EPP: run_epp,
    programs.ROUTING_SIDECAR: run_routing_sidecar,
    programs.GUIDELLM: run_guidellm,
    programs.KIT_RUNNER: run_kit_runner,
}
"""Program name → how to run it; anything else (``idle``, ``init``) has no process of its own."""


def serves(program: str) -> bool:
    """Whether ``program`` listens (its container is ready only once it does, unless a probe says otherwise)."""
    return program in PROGRAMS and program not in (programs.GUIDELLM, programs.KIT_RUNNER)  # clients: ready once run
