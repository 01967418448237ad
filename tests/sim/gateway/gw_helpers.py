"""Test helpers: the in-process mini cluster (``llmd_lab.sim.gateway.testbed``) and a streaming chat call."""

from __future__ import annotations

import json

import httpx

from llmd_lab.sim.epp.configs import COURSE_CONFIG as COURSE
from llmd_lab.sim.epp.configs import LOAD_AWARE_CONFIG as LOAD_AWARE
from llmd_lab.sim.gateway.testbed import NAME, NS, QWEN, pod, start_cluster

__all__ = ["COURSE", "LOAD_AWARE", "NAME", "NS", "chat", "pod", "served_by", "start_cluster"]


def served_by(cluster, response: httpx.Response) -> str:
    """The pod the EPP picked for this response (its trace, by the echoed x-request-id): vLLM names no pod."""
    trace = cluster.epp.director.traces.get(response.headers["x-request-id"])
    assert trace is not None, "the EPP kept no trace for this request"
    return trace.picked


async def chat(client: httpx.AsyncClient, url: str, messages: list[dict], *, max_tokens: int = 8,
               headers: dict | None = None) -> tuple[httpx.Response, str, list[bytes]]:
    """Stream one chat completion; return the response, the reply text, and the raw chunks as they came."""
    body = {"model": QWEN, "messages": messages, "max_tokens": max_tokens, "stream": True}
    chunks: list[bytes] = []
    text = []
    async with client.stream("POST", url, json=body, headers=headers or {}) as response:
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
    for line in b"".join(chunks).decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            obj = json.loads(line[6:])
            for choice in obj.get("choices") or []:
                text.append(choice.get("delta", {}).get("content") or "")
    return response, "".join(text), chunks
