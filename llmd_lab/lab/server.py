"""The lab process: one event loop running the API server and every lab component on 127.0.0.1.

``run_lab`` opens the store (``$LLMD_LAB_HOME/state.db``), installs the cluster profile (its CRDs, then its
objects), serves the Kubernetes API with uvicorn, starts the components (controllers, scheduler, kubelet,
gateway…) and only then writes ``kubeconfig`` and ``lab.json`` — so a client that sees ``lab.json`` can
talk to a ready lab. SIGTERM stops the components and the server together (open watches and log streams
end at once), then closes the store.

Components are found through :data:`COMPONENTS`, a list of ``"module:attribute"`` entries, so each part of
the lab plugs in by adding one line here. An entry whose module does not exist is an error, not a silent
skip: a stale or misspelt entry would otherwise leave a part of the cluster quietly missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import uvicorn

from llmd_lab.lab import crds as crd_data
from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.home import LabPaths, default_home, ensure_token, kubeconfig_text, write_private
from llmd_lab.lab.pki import LabPki, ensure_pki

log = logging.getLogger("llmd_lab.lab")

# "module:attribute": the attribute is a LabComponent, a list of them, or a callable(ctx) returning either.
COMPONENTS: list[str] = [
    "llmd_lab.lab.network:components",
    "llmd_lab.lab.controller:components",
    "llmd_lab.lab.scheduler:components",
    "llmd_lab.lab.kubelet:components",  # the gateway data plane is started by network (GatewayComponent)
]
DEFAULT_PROFILE = "rhoai-3.0"
COMPONENT_STOP_TIMEOUT_S = 10.0


# ------------------------------------------------------------------------------------------------ context
class LabClock:
    """Wall-clock timestamps, simulated durations divided by ``time_scale`` (``--time-scale 10`` = 10× faster)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time scale must be > 0, got {time_scale}")
        self.time_scale = time_scale

    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.time_scale

    async def sleep(self, simulated_seconds: float) -> None:
        await asyncio.sleep(max(0.0, simulated_seconds) / self.time_scale)


class EventRecorder:
    """Creates core/v1 Events (``kubectl describe`` / ``get events``), counting repeats like the real recorder."""

    def __init__(self, store: Store, clock: LabClock) -> None:
        self.store = store
        self.clock = clock
        self._seen: dict[tuple, str] = {}

    async def record(self, obj: dict, event_type: str, reason: str, message: str, component: str) -> dict:
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        key = (obj.get("kind"), namespace, meta.get("name"), meta.get("uid"), event_type, reason, message)
        stamp = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        name = self._seen.get(key)
        if name:
            with contextlib.suppress(errors.ApiError):
                event = await self.store.get("v1", "Event", name, namespace)
                event["count"] = int(event.get("count") or 1) + 1
                event["lastTimestamp"] = stamp
                return await self.store.update(event)
        name = f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:16]}"
        self._seen[key] = name
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "llmd-lab",
        }
        return await self.store.create(event)


class LabHooks(ApiHooks):
    """The API server's hooks, which components may also fill by name: ``ctx.hooks.setdefault("read_logs", fn)``.

    Unknown names raise ``AttributeError`` so a typo cannot silently leave a hook unset.
    """

    def _check(self, name: str) -> None:
        if name not in {f.name for f in dataclasses.fields(ApiHooks)}:
            known = ", ".join(f.name for f in dataclasses.fields(ApiHooks))
            raise AttributeError(f"no API hook named {name!r}; known hooks: {known}")

    def setdefault(self, name: str, value: Any) -> Any:
        self._check(name)
        if getattr(self, name) is None:
            setattr(self, name, value)
        return getattr(self, name)

    def __getitem__(self, name: str) -> Any:
        self._check(name)
        return getattr(self, name)

    def __setitem__(self, name: str, value: Any) -> None:
        self._check(name)
        setattr(self, name, value)


@dataclass
class LabContext:
    """What every component is handed: the store, where state lives, the profile, and the shared helpers."""

    store: Store
    home: Path
    profile: Any  # llmd_lab.lab.profiles.Profile, or None when no profile package exists
    time_scale: float
    clock: LabClock
    events: EventRecorder
    api_url: str = ""
    network: Any = None  # set by the network component (pod/service IP allocator, kube-proxy)
    gateway_port: int | None = None  # set by the gateway component
    # what only a component can answer for the HTTP app (pod logs, pod/service addresses); components set
    # the fields in start(), the app reads them per request
    hooks: LabHooks = field(default_factory=LabHooks)
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class LabComponent(Protocol):
    """A part of the lab (controller, scheduler, kubelet, gateway…) with a start/stop lifecycle."""

    name: str

    async def start(self, ctx: LabContext) -> None: ...

    async def stop(self) -> None: ...


def discover_components(ctx: LabContext, entries: Iterable[str] = COMPONENTS) -> list[LabComponent]:
    """Import each ``module:attribute`` entry and collect its components, in order.

    Raises ``LookupError`` for an entry whose module or attribute does not exist, and ``ValueError`` when two
    components share a name (``lab.json`` lists them by name, and two gateways would fight over the port).
    """
    found: list[LabComponent] = []
    for entry in entries:
        module_name, _, attr = entry.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise LookupError(f"lab component entry {entry!r}: no module {module_name!r}; "
                                  "remove the entry from llmd_lab.lab.server.COMPONENTS or fix its name") from exc
            raise
        value = getattr(module, attr or "components", None)
        if value is None:
            raise LookupError(f"lab component entry {entry!r}: {module_name} has no attribute {attr or 'components'!r}")
        if callable(value) and not isinstance(value, LabComponent):
            value = value(ctx)
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if not isinstance(item, LabComponent):
                raise TypeError(f"{entry} gave {item!r}, which is not a LabComponent (name, start, stop)")
            if any(other.name == item.name for other in found):
                raise ValueError(f"{entry} gave a second component named {item.name!r}; each part of the lab "
                                 "must be listed once in COMPONENTS")
            found.append(item)
    return found


# ------------------------------------------------------------------------------------------------ profile
def _load_profile(name: str) -> Any:
    try:
        from llmd_lab.lab.profiles import load_profile
    except ModuleNotFoundError as exc:
        if exc.name and "llmd_lab.lab.profiles".startswith(exc.name):
            return None
        raise
    return load_profile(name)


async def install_profile(store: Store, profile: Any, paths: LabPaths) -> None:
    """Serve the profile's CRDs (always, so upgraded definitions apply) and create its objects once.

    Objects are created only the first time a profile is installed into this state directory, so objects a
    learner deleted or changed stay that way across ``down``/``up``.
    """
    for crd in profile.crd_objects() if profile is not None else crd_data.load(None):
        await _create_or_update(store, crd)
    profile_name = profile.name if profile is not None else "none"
    marker = paths.profile_marker
    if marker.exists() and marker.read_text().strip() == profile_name:
        return
    objects = profile.objects() if profile is not None else []
    for obj in objects:
        try:
            created = await store.create(obj)
            if obj.get("status") and created.get("status") != obj["status"]:
                # create drops status for kinds with a status subresource (as kube-apiserver does); the
                # operators that would report it (OLM, CVO, the gateway controller…) are the profile itself
                await store.update_status({**created, "status": obj["status"]})
        except errors.ApiError as exc:
            if exc.code != 409:
                raise RuntimeError(
                    f"profile {profile_name!r}: cannot create {obj.get('kind')} "
                    f"{obj.get('metadata', {}).get('name')!r}: {exc.message}"
                ) from exc
    marker.write_text(profile_name + "\n")


async def _create_or_update(store: Store, obj: dict) -> None:
    try:
        await store.create(obj)
    except errors.ApiError as exc:
        if exc.code != 409:
            raise
        live = await store.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        if live.get("spec") != obj.get("spec"):
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}}
            await store.update(obj)


# ------------------------------------------------------------------------------------------------ serving
class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (the lab owns SIGTERM), ending the API's streams on shutdown."""

    def __init__(self, config: uvicorn.Config, streams: Any = None) -> None:
        super().__init__(config)
        self.streams = streams  # the app's StreamCloser (app.state.streams)

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # open watches and `logs -f` never finish by themselves: end them first, or uvicorn waits out
        # timeout_graceful_shutdown and then cancels them mid-body
        if self.streams is not None:
            self.streams.close()
        await super().shutdown(sockets)


async def _wait_all(tasks: dict[asyncio.Task, str], timeout: float, what: str) -> None:
    """Await ``tasks`` for up to ``timeout`` s, logging failures; stragglers are cancelled and named.

    ``asyncio.wait`` rather than ``wait_for``: on Python 3.11 ``wait_for`` can swallow a cancellation.
    """
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s %s failed", what, tasks[task], exc_info=task.exception())
    for task in pending:
        log.error("%s %s did not finish within %.0fs; cancelling it", what, tasks[task], timeout)
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1)


def bind_loopback(port: int) -> socket.socket:
    """Bind 127.0.0.1:``port`` (0 = any free port) before serving, so the real port is known up front."""
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the listener says TCP,
    # and without it every response waits ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; pick another --port (0 = any free)") from exc
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


async def wait_ready(url: str, token: str, pki: LabPki, deadline: float,
                     alive: Callable[[], bool] = lambda: True) -> None:
    """Poll ``/readyz`` until it answers 200 or ``deadline`` (monotonic) passes."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=2.0, verify=pki.client_context()) as client:
        while True:
            if not alive():
                raise RuntimeError("the API server stopped before it became ready")
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{url}/readyz", headers=headers)
                if response.status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}/readyz did not answer 200 in time")
            await asyncio.sleep(0.02)


def _create_app(store: Store, token: str, ctx: LabContext) -> Any:
    from llmd_lab.lab.apiserver.app import create_app

    return create_app(store, token=token, hooks=ctx.hooks)


async def run_lab(
    home: Path | str,
    port: int = 0,
    profile: str = DEFAULT_PROFILE,
    time_scale: float = 1.0,
    *,
    stop: asyncio.Event | None = None,
    components: Iterable[str] | None = None,
    ready: Callable[[dict], Awaitable[None] | None] | None = None,
) -> None:
    """Run the lab until ``stop`` is set (or SIGTERM/SIGINT). ``lab.json`` exists exactly while it serves."""
    paths = LabPaths(Path(home))
    paths.home.mkdir(parents=True, exist_ok=True)
    token = ensure_token(paths)
    pki = ensure_pki(paths.pki.directory)
    profile_obj = _load_profile(profile)
    clock = LabClock(time_scale)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    store = Store(paths.state_db)
    started: list[LabComponent] = []
    server: _Server | None = None
    serve_task: asyncio.Task | None = None
    try:
        await install_profile(store, profile_obj, paths)
        sock = bind_loopback(port)
        bound = sock.getsockname()[1]
        url = f"https://127.0.0.1:{bound}"
        ctx = LabContext(store=store, home=paths.home, profile=profile_obj, time_scale=time_scale, clock=clock,
                         events=EventRecorder(store, clock), api_url=url)
        found = discover_components(ctx, COMPONENTS if components is None else components)
        if any(getattr(c, "graceful_pod_deletion", False) for c in found):
            store.graceful_pod_deletion = True  # a kubelet finishes terminating pods
        app = _create_app(store, token, ctx)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1, ws="none", ssl_certfile=str(pki.server_cert),
                                ssl_keyfile=str(pki.server_key))
        server = _Server(config, streams=getattr(app.state, "streams", None))
        serve_task = asyncio.create_task(server.serve(sockets=[sock]))
        await wait_ready(url, token, pki, time.monotonic() + 30, alive=lambda: not serve_task.done())
        for component in found:
            await component.start(ctx)
            started.append(component)
        info = {
            "pid": os.getpid(),
            "port": bound,
            "url": url,
            "ca_file": str(pki.ca_cert),
            "gateway_port": ctx.gateway_port,
            "profile": profile_obj.name if profile_obj is not None else profile,
            "time_scale": time_scale,
            "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "components": [c.name for c in started],
        }
        write_private(paths.kubeconfig, kubeconfig_text(url, token, pki.ca_data()))
        write_private(paths.lab_json, json.dumps(info, indent=2) + "\n")
        log.warning("lab ready at %s (profile %s, pid %d)", url, info["profile"], info["pid"])
        if ready is not None:
            result = ready(info)
            if asyncio.iscoroutine(result):
                await result
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait({stop_wait, serve_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
    finally:
        with contextlib.suppress(FileNotFoundError):
            info_now = json.loads(paths.lab_json.read_text())
            if info_now.get("pid") == os.getpid():
                paths.lab_json.unlink()
        # the components and the API server stop side by side: each only ends its own tasks, listeners and
        # simulated programs (nothing is deleted, so the next `up` restarts the same pods), and the store,
        # which they all use in-process, is closed only once every one of them has stopped
        stopping = {asyncio.create_task(c.stop(), name=f"stop {c.name}"): c.name for c in started}
        if server is not None and serve_task is not None:
            server.should_exit = True
            stopping[serve_task] = "api-server"
        await _wait_all(stopping, COMPONENT_STOP_TIMEOUT_S, "stopping")
        store.close()
        log.warning("lab stopped")


def main(argv: list[str] | None = None) -> int:
    """``python -m llmd_lab.lab --home DIR --port N --profile NAME --time-scale X`` (what ``up`` spawns)."""
    parser = argparse.ArgumentParser(prog="llmd_lab.lab.server")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--profile", default=DEFAULT_PROFILE)
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    asyncio.run(run_lab(args.home or default_home(), args.port, args.profile, args.time_scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
