"""``llmd-lab bench <name>``: benchmarks that print numbers (ratios measured in one run).

Performance claims live here, not in timed tests. Each benchmark is a module in this package with
``add_arguments(parser)`` and ``run(args) -> int``; ``BENCHMARKS`` maps the command name to it.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS: dict[str, tuple[str, str]] = {
    "api": ("llmd_lab.bench.api", "lab cold start and API latency (get, list 1,000, create, watch delivery)"),
    "sim": ("llmd_lab.bench.sim", "one simulated vLLM replica: throughput vs concurrency, cold vs warm TTFT"),
    "routing": ("llmd_lab.bench.routing", "routing policies vs round-robin and the oracle on cache workloads"),
    "epp": ("llmd_lab.bench.epp", "endpoint-picker decision latency for 4, 8 and 32 endpoints"),
    "gateway": ("llmd_lab.bench.gateway", "gateway overhead vs direct-to-pod and streamed tokens/s"),
    "fidelity": ("llmd_lab.bench.fidelity", "the simulated vLLM against published vLLM measurements (fit/check)"),
    "reference": ("llmd_lab.bench.reference", "the rhaoi3-llm-d multi-turn benchmark reproduced (llm-d vs RR)"),
    "lab": ("llmd_lab.bench.lab", "apply-to-Ready time for 1, 4, 16 replicas and memory per replica"),
    "chaos": ("llmd_lab.bench.chaos", "gateway load + pod kills + bad objects + kill -9: answered/failed/hung/"
              "truncated, writes lost, API p99"),
}


def register(sub: argparse._SubParsersAction, argv: list[str] | None = None) -> None:
    """Add ``bench`` and one sub-command per benchmark module.

    Only the benchmark named on the command line is imported (for its own flags): importing all of them
    would make every ``llmd-lab`` call pay for pandas, kubernetes and the simulators.
    """
    selected = argv[1] if argv and len(argv) > 1 and argv[0] == "bench" else None
    bench = sub.add_parser("bench", help="run a benchmark and print its numbers")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="NAME")
    for name, (module_name, help_text) in BENCHMARKS.items():
        parser = bench_sub.add_parser(name, help=help_text)
        parser.set_defaults(func=_runner(module_name))
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON rows")
        if name != selected:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)


def _runner(module_name: str):
    def run(args: argparse.Namespace) -> int:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            print(f"benchmark {args.bench!r} is not built yet ({module_name} is missing)")
            return 2
        return int(module.run(args) or 0)

    return run
