"""The lab process: one event loop running the API server and every lab component on 127.0.0.1.

``run_lab`` opens the store (``$LLMD_LAB_HOME/state.db``), installs the cluster profile (its CRDs, then its
objects), serves the Kubernetes API with uvicorn, starts the components (controllers, scheduler, kubelet,
gateway…) and only then writes ``kubeconfig`` and ``lab.json`` — so a client that sees ``lab.json`` can
talk to a ready lab. SIGTERM stops the components and the server together (open watches and log streams
end at once), then closes the store.

Components are constructed explicitly in :func:`build_components` (tests pass their own factory), typed
against :mod:`llmd_lab.lab.context`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from llmd_lab.lab import crds as crd_data
from llmd_lab.lab import users
from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.app import create_app
from llmd_lab.lab.apiserver.auth.authorizer import lab_access
from llmd_lab.lab.apiserver.auth.install import ClusterRoleAggregator, install_policy
from llmd_lab.lab.apiserver.store import Store
from llmd_lab.lab.context import LabComponent, LabContext, make_context
from llmd_lab.lab.controller import controller_manager
from llmd_lab.lab.home import (
    LabPaths,
    default_home,
    ensure_token,
    kubeconfig_text,
    secure_home,
    write_private,
)
from llmd_lab.lab.kubelet.kubelet import Kubelet
from llmd_lab.lab.network import GatewayComponent, ServiceNetwork
from llmd_lab.lab.pki import LabPki, ensure_pki
from llmd_lab.lab.profiles import Profile, load_profile
from llmd_lab.lab.scheduler.scheduler import KubeScheduler
from llmd_lab.sim.http import RunningServer, start_server
from llmd_lab.sim.tls import server_ssl_context

log = logging.getLogger("llmd_lab.lab")

DEFAULT_PROFILE = "rhoai-3.0"
COMPONENT_STOP_TIMEOUT_S = 10.0


# ------------------------------------------------------------------------------------------------ components
def build_components(ctx: LabContext) -> list[LabComponent]:
    """The lab's parts, constructed here and nowhere else, in start order, with the API server's hooks filled.

    kube-proxy and the gateway first (Services get cluster IPs before pods need them), then the
    controller-manager, the scheduler and the kubelet (which finishes graceful pod deletions, so the store
    is told to leave bound pods Terminating for it).
    """
    services = ServiceNetwork(ctx.network)
    kubelet = Kubelet(ctx.network)
    ctx.hooks.resolve_service_address = services.resolve_service_address
    ctx.hooks.read_logs = kubelet.read_logs
    ctx.hooks.resolve_pod_address = kubelet.resolve_pod_address
    ctx.store.graceful_pod_deletion = True
    # the clusterrole-aggregation controller runs in kube-controller-manager too
    return [services, GatewayComponent(), *controller_manager(ctx), ClusterRoleAggregator(), KubeScheduler(), kubelet]


# ------------------------------------------------------------------------------------------------ profile
async def install_profile(store: Store, profile: Profile | None, paths: LabPaths) -> None:
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
    write_private(marker, profile_name + "\n")


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


async def run_lab(
    home: Path | str,
    port: int = 0,
    profile: str = DEFAULT_PROFILE,
    time_scale: float = 1.0,
    *,
    stop: asyncio.Event | None = None,
    components: Callable[[LabContext], list[LabComponent]] = build_components,
    ready: Callable[[dict], Awaitable[None] | None] | None = None,
    attendees: int = users.DEFAULT_ATTENDEES,
) -> None:
    """Run the lab until ``stop`` is set (or SIGTERM/SIGINT). ``lab.json`` exists exactly while it serves."""
    paths = LabPaths(Path(home))
    secure_home(paths)
    token = ensure_token(paths)
    people = users.lab_identities(paths, attendees)
    pki = ensure_pki(paths.pki.directory)
    profile_obj = load_profile(profile)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    store = Store(paths.state_db)
    started: list[LabComponent] = []
    api: RunningServer | None = None
    try:
        await install_profile(store, profile_obj, paths)
        await install_policy(store, users.cluster_objects(profile_obj, attendees))
        sock = bind_loopback(port)
        bound = sock.getsockname()[1]
        url = f"https://127.0.0.1:{bound}"
        ctx = make_context(store, paths.home, profile_obj, time_scale, api_url=url)
        found = components(ctx)
        app = create_app(store, token=token, hooks=ctx.hooks,
                         access=lab_access(store, ((p.token, p.user) for p in people)))
        # open watches and `logs -f` never finish by themselves: end them first on shutdown, or uvicorn waits
        # out its graceful timeout and then cancels them mid-body
        api = await start_server(app, "127.0.0.1", bound, name="api-server", sockets=[sock],
                                 ssl_context=server_ssl_context(str(pki.server_cert), str(pki.server_key)),
                                 graceful_shutdown_s=1, on_shutdown=app.state.streams.close, log_level="warning")
        serve_task = api.task
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
            "profile": profile_obj.name,
            "time_scale": time_scale,
            "attendees": attendees,
            "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "components": [c.name for c in started],
        }
        write_private(paths.kubeconfig, kubeconfig_text(url, token, pki.ca_data()))
        users.write_kubeconfigs(paths, url, pki.ca_data(), people)
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
        if api is not None:  # open watches and `logs -f` are ended first (on_shutdown), then uvicorn drains
            stopping[asyncio.create_task(api.stop(graceful=True), name="stop api-server")] = "api-server"
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
    parser.add_argument("--attendees", type=int, default=users.DEFAULT_ATTENDEES)
    args = parser.parse_args(argv)
    os.umask(0o077)  # whatever the lab process writes (state, logs, keys) is private to its user
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    asyncio.run(run_lab(args.home or default_home(), args.port, args.profile, args.time_scale,
                        attendees=args.attendees))
    return 0


if __name__ == "__main__":
    sys.exit(main())
