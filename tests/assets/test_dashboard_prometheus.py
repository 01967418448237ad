"""Every PromQL expression of the lab dashboard returns data from Debian's Prometheus scraping the simulators.

The lab's simulated vLLM replicas, endpoint picker and gateway are assembled on loopback by
``llmd_lab.sim.gateway.testbed`` (the same parts the lab's kubelet starts inside pods); a real Prometheus
scrapes them every second with the ``namespace``/``pod`` target labels the lab dashboard expects, traffic goes
through the gateway, and each dashboard query must come back with at least one series.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAB_DASHBOARD = REPO / "assets" / "dashboards" / "llmd-lab.json"
VARIABLES = {"$__rate_interval": "30s", "$namespace": ".*", "$model": ".*"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _queries() -> list[tuple[str, str]]:
    dashboard = json.loads(LAB_DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            out.append((f"{panel['title']} [{target['legendFormat']}]", expr))
    return out


async def _query(client: httpx.AsyncClient, base: str, expr: str) -> list:
    response = await client.get(f"{base}/api/v1/query", params={"query": expr})
    body = response.json()
    assert body.get("status") == "success", f"{expr}: {body}"
    return body["data"]["result"]


async def _until(predicate, *, timeout: float, what: str, interval: float = 0.25) -> None:
    """Poll an async predicate until it is true or the deadline passes (Prometheus has no readiness event)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def _run(tmp_path: Path, prometheus: str) -> dict[str, int]:
    from llmd_lab.sim.gateway.testbed import NAME, NS, QWEN, start_cluster

    cluster = await start_cluster(replicas=2, time_scale=1000.0)
    port = _free_port()
    targets = [
        {"targets": [f"{p.ip}:8000"], "labels": {"namespace": NS, "pod": p.name}} for p in cluster.pods
    ]
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [
            # as assets/monitoring/podmonitor-vllm.yaml: vLLM serves /metrics over HTTPS with KServe's self-signed
            # workload certificate, which verifies against nothing
            {"job_name": "vllm", "scheme": "https", "tls_config": {"insecure_skip_verify": True},
             "static_configs": targets},
            {"job_name": "epp", "static_configs": [{"targets": [f"{cluster.epp_ip}:9090"],
                                                    "labels": {"namespace": NS, "pod": f"{NAME}-epp"}}]},
        ],
    }  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:

            async def ready() -> bool:
                try:
                    return (await client.get(f"{base}/-/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await _until(ready, timeout=30, what="Prometheus to start")
            system = "You are a concise assistant for a workshop on KV-cache-aware routing. " * 8
            loop = asyncio.get_running_loop()
            stop_at = loop.time() + 4.0
            n = 0
            while loop.time() < stop_at:  # traffic spread over several scrapes, so rate() has two samples
                body = {"model": QWEN, "max_tokens": 8, "stream": True,
                        "messages": [{"role": "system", "content": system},
                                     {"role": "user", "content": f"question {n % 5}"}]}  # fmt: skip
                response = await client.post(cluster.url("/v1/chat/completions"), json=body)
                assert response.status_code == 200, response.text
                n += 1
                await asyncio.sleep(0.1)

            async def scraped() -> bool:
                return (
                    len(await _query(client, base, "count_over_time(up[30s]) >= 3")) == len(cluster.pods) + 1
                )

            await _until(scraped, timeout=30, what="three scrapes of every target")
            return {title: len(await _query(client, base, expr)) for title, expr in _queries()}
    finally:
        proc.terminate()
        await proc.wait()
        log.close()
        await cluster.stop()


@pytest.mark.slow
def test_every_lab_dashboard_query_returns_data_from_prometheus(tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus)")
    results = asyncio.run(_run(tmp_path, prometheus))
    empty = [title for title, count in results.items() if count == 0]
    assert results and not empty, f"queries with no data: {empty}"
