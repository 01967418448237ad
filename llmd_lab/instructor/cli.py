"""``llmd-lab catch-up | class | sizing | profile capture``: the instructor's commands (see the package docstring)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmd_lab.connection import Connection


def register(sub: argparse._SubParsersAction) -> None:
    """Add the instructor's commands to the ``llmd-lab`` parser."""
    p = sub.add_parser("catch-up", help="run the notebooks before NN for an attendee, headless, with progress")
    p.add_argument("notebook", help="the notebook the attendee wants to start (e.g. 05)")
    p.add_argument("--user", help="lab attendee: run as them (their kubeconfig from `llmd-lab kubeconfig --user`)")
    p.add_argument("--kubeconfig", type=Path, help="run with this kubeconfig (an attendee's, on a cluster)")
    p.add_argument("--namespace", help="the attendee's project (default: their kubeconfig's, else the notebooks')")
    p.add_argument("--fast", action="store_true", help="the CI parameters: fewer requests, shorter waits")
    p.add_argument("--out", type=Path, help="where the executed notebooks go (default ~/.llmd-lab/catch-up/<user>)")
    p.set_defaults(func=cmd_catch_up)

    p = sub.add_parser("class", help="every attendee project: services, GPUs held, notebooks passed")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    p.add_argument("--kubeconfig", type=Path, help="the instructor's kubeconfig (default: $KUBECONFIG or the lab)")
    p.set_defaults(func=cmd_class)

    p = sub.add_parser("sizing", help="GPUs per attendee and for the class, timings, and a cut list for a slot")
    p.add_argument("--attendees", type=int, default=1, help="class size (default 1)")
    p.add_argument("--slot", type=int, default=120, help="minutes available (default 120)")
    p.set_defaults(func=cmd_sizing)

    p = sub.add_parser("profile", help="lab profiles: `profile capture` describes a real cluster as one")
    psub = p.add_subparsers(dest="profile_command", required=True, metavar="COMMAND")
    c = psub.add_parser("capture", help="write a lab profile of the cluster you are logged in to (as instructor)")
    c.add_argument("--name", default="captured", help="the profile's name (default captured)")
    c.add_argument("--out", type=Path, default=Path("captured-profile"), help="directory to write (default ./captured-profile)")
    c.add_argument("--kubeconfig", type=Path, help="kubeconfig to read the cluster with (default $KUBECONFIG)")
    c.add_argument("--context", help="kubeconfig context")
    c.set_defaults(func=cmd_profile_capture)


def _err(message: str) -> int:
    print(f"llmd-lab: {message}", file=sys.stderr)
    return 1


def _user_kubeconfig(user: str) -> Path:
    """The lab's kubeconfig for an attendee, through the documented ``llmd-lab kubeconfig --user NAME``."""
    proc = subprocess.run([sys.executable, "-m", "llmd_lab.cli", "kubeconfig", "--user", user],
                          capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ValueError(f"no kubeconfig for attendee {user!r}: {proc.stderr.strip() or 'llmd-lab kubeconfig --user failed'}"
                         " (start the lab with `llmd-lab up --attendees N`)")
    return Path(proc.stdout.strip().splitlines()[-1])


def _context_namespace(kubeconfig: Path) -> str | None:
    from kubernetes import config

    _, active = config.list_kube_config_contexts(str(kubeconfig))
    return (active or {}).get("context", {}).get("namespace")


def cmd_catch_up(args: argparse.Namespace) -> int:
    from llmd_lab.connection import lab_home
    from llmd_lab.instructor import catchup

    try:
        kubeconfig = _user_kubeconfig(args.user) if args.user else args.kubeconfig
        namespace = args.namespace or (_context_namespace(kubeconfig) if kubeconfig else None)
        out = args.out or lab_home() / "catch-up" / (args.user or namespace or "default")
        ran = catchup.catch_up(args.notebook, out, kubeconfig=kubeconfig, namespace=namespace, fast=args.fast)
    except (ValueError, catchup.CatchUpError) as exc:
        return _err(str(exc))
    who = args.user or namespace or "the default project"
    print(f"{who} is ready for notebook {args.notebook}: ran {len(ran)} notebook(s) in "
          f"{sum(r.seconds for r in ran):.0f} s; executed copies in {out}")
    return 0


def _connect(kubeconfig: Path | None, context: str | None = None) -> Connection:
    from llmd_lab.connection import connect

    return connect(kubeconfig=kubeconfig, context=context, check_namespace=False, start_lab=False)


def cmd_class(args: argparse.Namespace) -> int:
    from llmd_lab.connection import ConnectError
    from llmd_lab.instructor.classview import class_view

    try:
        frame = class_view(_connect(args.kubeconfig))
    except ConnectError as exc:
        return _err(str(exc))
    if args.json:
        print(frame.to_json(orient="records", indent=2))
    elif frame.empty:
        print("no attendee project holds a workshop service, a GPU or a passed notebook yet")
    else:
        print(frame.to_string(index=False))
    return 0


def cmd_sizing(args: argparse.Namespace) -> int:
    from llmd_lab.course import sizing

    if args.attendees < 1 or args.slot < 1:
        return _err("--attendees and --slot must be at least 1")
    print(sizing.report(args.attendees, args.slot))
    return 0


def cmd_profile_capture(args: argparse.Namespace) -> int:
    from llmd_lab.connection import ConnectError
    from llmd_lab.instructor import capture

    try:
        conn = _connect(args.kubeconfig, args.context)
        files = capture.capture(conn, args.name)
    except (ConnectError, capture.CaptureError) as exc:
        return _err(str(exc))
    profile = capture.write(files, args.out)
    print(f"wrote {profile} ({len(files) - 2} CRDs); rehearse with: llmd-lab up --profile {profile}")
    return 0
