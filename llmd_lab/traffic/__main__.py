"""``python -m llmd_lab.traffic``: run one of the course's workloads from a shell or a Kubernetes Job.

The in-cluster benchmark Job (``assets/jobs/traffic-runner-job.yaml``) calls it, so a long benchmark
does not depend on a workbench staying open::

    python -m llmd_lab.traffic --url "$STATUS_URL" --workload multi-turn --output /results/run.json

It writes one row per request (the columns of :func:`llmd_lab.traffic.run`) to ``--output`` — CSV
for ``.csv``, JSON lines for ``.jsonl``, and for ``.json`` one object with the summary and the
requests — and prints the summary (TTFT p50/p95/p99, cache hit rate, pods used). ``--model`` defaults
to the first model the endpoint serves (``GET /v1/models``). Exit status: 0 when every request
succeeded, 1 when some failed, 2 for bad arguments or an unreachable endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path

import httpx
import pandas as pd

from llmd_lab.traffic.client import InferenceClient
from llmd_lab.traffic.runner import Target, run, summary
from llmd_lab.traffic.workloads import WORKLOADS

OUTPUT_SUFFIXES = (".csv", ".jsonl", ".json")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m llmd_lab.traffic",
        description="Send one of the course's workloads to an OpenAI-compatible endpoint and record every request.",
    )
    p.add_argument("--url", required=True, help="base URL: the LLMInferenceService's status.url or a Service URL")
    p.add_argument("--workload", default="multi-turn", choices=sorted(WORKLOADS),
                   help="request shape (default: multi-turn, 20 conversations x 6 turns)")  # fmt: skip
    p.add_argument("--output", type=Path, help="where to write per-request results: .csv, .jsonl or .json")
    p.add_argument("--model", help="served model name (default: the first one GET /v1/models lists)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--concurrency", type=int, help="closed loop: N workers (default 4)")
    load.add_argument("--rate", type=float, help="open loop: start R sessions per second (Poisson)")
    p.add_argument("--requests", type=int, help="stop after this many requests")
    p.add_argument("--duration", type=float, help="stop starting requests after this many seconds")
    p.add_argument("--warmup", type=int, default=0, help="sessions to run first and drop from the results")
    p.add_argument("--seed", type=int, default=0, help="workload seed (same seed, same prompts)")
    p.add_argument("--label", help="the 'mode' column's value (default: the URL)")
    p.add_argument("--ca-file", help="CA bundle that signed the endpoint's certificate")
    p.add_argument("--insecure", action="store_true", help="skip TLS certificate verification")
    return p


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"--url must start with http:// or https://, got {args.url!r}")
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_SUFFIXES:
        parser.error(f"--output must end in {', '.join(OUTPUT_SUFFIXES)}, got {args.output.name!r}")
    for flag, value in (("--concurrency", args.concurrency), ("--requests", args.requests)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
    for flag, value in (("--rate", args.rate), ("--duration", args.duration)):
        if value is not None and not value > 0:
            parser.error(f"{flag} must be greater than 0, got {value}")


async def _served_model(url: str, ca_file: str | None, insecure: bool) -> str:
    async with InferenceClient(url, "", ca_file=ca_file, insecure=insecure, timeout=30.0) as client:
        models = await client.models()
    if not models:
        raise ValueError(f"{url}/v1/models lists no model: pass --model")
    return models[0]


def _jsonable(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()  # type: ignore[union-attr]
    return value


def write_results(df: pd.DataFrame, table: pd.DataFrame, path: Path) -> None:
    """Write the per-request rows by ``path``'s suffix (the summary too, for ``.json``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        rows = json.loads(df.to_json(orient="records")) if not df.empty else []
        summary_rows = [
            {table.index.name or "mode": key, **{k: _jsonable(v) for k, v in row.items()}}
            for key, row in table.iterrows()
        ]
        path.write_text(json.dumps({"summary": summary_rows, "requests": rows}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(args, parser)
    try:
        model = args.model or asyncio.run(_served_model(args.url, args.ca_file, args.insecure))
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        print(f"cannot list models at {args.url}: {exc}; pass --model or check the URL", file=sys.stderr)
        return 2
    workload = WORKLOADS[args.workload](seed=args.seed)
    target = Target(args.url, model, name=args.label, ca_file=args.ca_file, insecure=args.insecure)
    print(f"{workload!r} → {args.url} (model {model})", file=sys.stderr)
    df = run(
        target, workload,
        concurrency=args.concurrency, rate=args.rate, warmup=args.warmup, max_requests=args.requests,
        duration_s=args.duration, seed=args.seed, label=args.label, progress=sys.stderr.isatty(),
    )  # fmt: skip
    table = summary(df)
    if args.output is not None:
        write_results(df, table, args.output)
        print(f"wrote {len(df)} requests to {args.output}", file=sys.stderr)
    if df.empty:
        print("no requests were sent (check --requests / --duration)")
        return 1
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string())
    return 0 if bool(df["ok"].all()) else 1


if __name__ == "__main__":
    sys.exit(main())
