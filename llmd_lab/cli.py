"""The ``llmd-lab`` command: run the local lab and its benchmarks.

Each command group lives beside the code it drives and registers itself here, so this module only
wires argparse: ``llmd_lab.lab.cli`` (up, down, status, kubeconfig, reset) and ``llmd_lab.bench``
(``bench <name>``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the full parser; subcommand modules add their own arguments."""
    from llmd_lab.bench import register as register_bench
    from llmd_lab.instructor.cli import register as register_instructor
    from llmd_lab.lab.cli import register as register_lab

    parser = argparse.ArgumentParser(
        prog="llmd-lab",
        description="Run the llm-d workshop's local lab: a Kubernetes-compatible API server with simulated "
        "GPU nodes, vLLM replicas and the llm-d endpoint picker, all on 127.0.0.1.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_lab(sub)
    register_instructor(sub)
    register_bench(sub, list(sys.argv[1:] if argv is None else argv))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
