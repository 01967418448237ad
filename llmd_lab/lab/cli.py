"""``llmd-lab up | down | status | kubeconfig | reset | prometheus``: the local lab's lifecycle from a shell.

Every command works on ``$LLMD_LAB_HOME`` (default ``~/.llmd-lab``). Nothing here prints the bearer
token or the kubeconfig's contents — only the kubeconfig's path.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmd_lab.lab import process, users
from llmd_lab.lab.home import LabPaths


def register(sub: argparse._SubParsersAction) -> None:
    """Add the lab's commands to the ``llmd-lab`` parser."""
    p = sub.add_parser("up", help="start the local lab in the background (returns once the API answers)")
    p.add_argument("--profile", default=None, help="cluster profile (default rhoai-3.0; see llmd_lab/lab/profiles)")
    p.add_argument("--time-scale", type=float, default=1.0, help="divide simulated durations by X (default 1)")
    p.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (default 0: any free port)")
    p.add_argument("--timeout", type=float, default=process.START_TIMEOUT_S, help="seconds to wait for readiness")
    p.add_argument("--attendees", type=int, default=None,
                   help="attendees user1..userN, each with a project of the same name (default 1)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="stop the local lab (state is kept)")
    p.add_argument("--timeout", type=float, default=process.STOP_TIMEOUT_S, help="seconds before SIGKILL")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="is the lab running: URL, profile, pid, uptime, object counts")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("kubeconfig", help="print the path of the lab's kubeconfig (export KUBECONFIG=$(…))")
    p.add_argument("--user", default=None, metavar="NAME",
                   help="whose kubeconfig: the instructor (default), userK, or system:serviceaccount:userK:workbench")
    p.set_defaults(func=cmd_kubeconfig)

    p = sub.add_parser("workbench", help="run a command (JupyterLab) as an OpenShift AI workbench of an attendee")
    p.add_argument("--user", default="user1", help="whose project's workbench (default user1)")
    p.add_argument("--no-login", dest="login", action="store_false",
                   help="only the workbench service account (no `oc login` kubeconfig in the workbench home)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command, e.g. -- jupyter lab")
    p.set_defaults(func=cmd_workbench)

    p = sub.add_parser("reset", help="wipe the lab's state (objects, token, kubeconfig)")
    p.add_argument("--force", action="store_true", help="stop a running lab first")
    p.set_defaults(func=cmd_reset)

    from llmd_lab.lab import prometheus  # `llmd-lab prometheus`: the cluster's monitoring queries, on the lab

    prometheus.register(sub)


def _err(message: str) -> int:
    print(f"llmd-lab: {message}", file=sys.stderr)
    return 1


def cmd_up(args: argparse.Namespace) -> int:
    try:
        if args.attendees is not None:
            users.attendee_names(args.attendees)
        info, started = process.up(profile=args.profile, time_scale=args.time_scale, port=args.port,
                                   timeout=args.timeout, attendees=args.attendees)
    except ValueError as exc:
        return _err(str(exc))
    except process.LabError as exc:
        return _err(str(exc))
    verb = "started" if started else "already running"
    print(f"lab {verb}: {info.url} (profile {info.profile}, pid {info.pid}, time scale {info.time_scale:g})")
    if info.gateway_port:
        print(f"gateway: http://127.0.0.1:{info.gateway_port}")
    print(f"kubeconfig: {info.kubeconfig}")
    print(f"  export KUBECONFIG={info.kubeconfig}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = process.down(timeout=args.timeout)
    if stopped is None:
        print("lab is not running")
        return 0
    info = stopped.info
    if stopped.killed:
        return _err(f"the lab (pid {info.pid}) did not stop within {stopped.timeout:g}s of SIGTERM and was killed "
                    f"(SIGKILL); acknowledged writes are kept in {info.home / 'state.db'}, see "
                    f"{info.home / 'lab.log'} for why it hung")
    print(f"lab stopped (pid {info.pid}); state kept in {info.home}")
    return 0


def _format_uptime(seconds: Any) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def cmd_status(args: argparse.Namespace) -> int:
    st = process.status()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0 if st["running"] else 3
    if st["running"]:
        print(f"running   {st['url']}  profile {st['profile']}  pid {st['pid']}  up {_format_uptime(st['uptime_s'])}")
        if st.get("gateway_port"):
            print(f"gateway   http://127.0.0.1:{st['gateway_port']}")
    else:
        print(f"not running (state in {st['home']})")
    print(f"kubeconfig {st['kubeconfig']}")
    if st["objects"]:
        print("objects   " + ", ".join(f"{kind} {n}" for kind, n in sorted(st["objects"].items())))
    return 0 if st["running"] else 3  # like `systemctl status`: non-zero when not running


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    paths = LabPaths(process.resolve_home())
    try:
        name = users.resolve_name(paths, args.user)
    except ValueError as exc:
        return _err(str(exc))
    print(users.kubeconfig_path(paths, name))
    return 0


def cmd_workbench(args: argparse.Namespace) -> int:
    from llmd_lab.lab import workbench

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        workbench.run(LabPaths(process.resolve_home()), command, args.user, login=args.login)
    except workbench.WorkbenchError as exc:
        return _err(str(exc))
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    try:
        removed = process.reset(force=args.force)
    except process.LabError as exc:
        return _err(str(exc))
    print(f"lab state wiped ({', '.join(removed) or 'nothing to remove'})")
    return 0
