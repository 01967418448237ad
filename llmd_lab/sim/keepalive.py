"""How long idle HTTP connections to pods live, on each side.

vLLM's API server closes a connection idle for ``VLLM_HTTP_TIMEOUT_KEEP_ALIVE`` seconds (vllm/envs.py, default
5; handed to uvicorn as ``timeout_keep_alive``). A pooled client that kept an idle connection as long would
sometimes send its next request just as the pod hangs up, and see it cut. Upstream clients of pods do not see
that: Go's transport retries a GET that a closing keep-alive connection cut (net/http ``shouldRetryRequest``:
kube-apiserver's proxy, the EPP's scraper), and the kubelet's prober keeps no connections at all
(pkg/probe/http: ``DisableKeepAlives``). The lab's clients (httpx, which does not retry) drop an idle connection
before the pod would; the prober reuses one within that time, which at a compressed time scale saves a TLS
handshake per probe.
"""

from __future__ import annotations

VLLM_KEEP_ALIVE_S = 5  # vllm/envs.py VLLM_HTTP_TIMEOUT_KEEP_ALIVE default
POD_CLIENT_KEEPALIVE_EXPIRY_S = 4.0  # below VLLM_KEEP_ALIVE_S, so no client reuses a connection the pod is closing
