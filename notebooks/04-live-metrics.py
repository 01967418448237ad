# %% [markdown]
# # 04 · Live metrics: watch the fleet while it works
#
# **Goal:** read the numbers that tell you whether llm-d is doing its job — time to first token, prefix-cache
# hit rate, KV-cache use and queue depth — live while traffic runs, and know the PromQL for the same numbers
# on a cluster.
#
# **Time:** 15 minutes · **Needs:** the service from notebook 02 (created here if missing).
#
# **What this notebook does:**
#
# 1. Takes one reading of every pod's metrics and shows the ones this workshop uses.
# 2. Starts the live panel (sparklines of TTFT p50/p95, hit rate, KV-cache use and queue depth) and runs
#    multi-turn traffic while it updates.
# 3. Charts the same story over time: requests per second and KV-cache use per pod, and the hit rate per pod.
# 4. Fills a small-cache pod past 80 % KV-cache use and shows what follows: requests waiting, preemptions.
# 5. Prints the PromQL for each number (the `kserve_` names) and, on a cluster, links the shipped Grafana
#    dashboard.
# 6. Ends with a check: the panel updated, the pods counted as many finished requests as the client
#    received, and the small cache went past 80 % and made requests wait.
#
# **Instructor talking points:**
#
# * Counters need two readings; gauges need one. Most "the metric is wrong" questions are about this.
# * Hit rate per pod tells you whether routing is working; requests per pod tells you whether load is
#   balanced. You want both.
# * KV-cache use above 80 % is pressure; a growing waiting queue is saturation — the point where routing can
#   no longer help (notebook 05).
# * On OpenShift AI 3.0 the old name `vllm:gpu_cache_usage_perc` is gone; dashboards built on it show nothing.
#
# **Chart:** The live panel's final state: TTFT p50/p95, prefix-cache hit rate, KV-cache use and queue depth
# over the run.
#
# Every vLLM pod exposes Prometheus metrics at `/metrics`. A *counter* (requests, prompt tokens, cache hits) only
# goes up, so what matters is its change between two readings; a *gauge* (KV-cache use, requests waiting) is a
# reading of now. The library reads the pods through the API server's pod proxy, which works from a workbench
# and from a laptop with nothing but API access.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
name = "qwen"
model = "Qwen/Qwen3-0.6B"
replicas = 2
gpu = "g6.4xlarge"
max_model_len = 8192
conversations = 16  # traffic while the panel runs: conversations × turns
turns = 5
workers = 4
interval_s = 1.0  # panel refresh
pressure_cache_gib = 1.25  # KV cache of the pressure step's small-cache pod (one extra GPU, deleted after)
pressure_gpu_memory_utilization = None  # None: the model's weights + overhead + pressure_cache_gib, as a GPU share
pressure_requests = 24  # long prompts (pressure_prompt_tokens each) sent to it, pressure_concurrency at a time
pressure_concurrency = 12
pressure_prompt_tokens = 2000
allow_disruptive = None  # the pressure step's pod takes one more GPU: on a shared cluster only with True
ready_timeout_s = 900
fast = False
seed = 0

# %%
import altair as alt
import pandas as pd
from IPython.display import display

from llmd_lab import connect, deploy, doctor, k8s, live, manifests, metrics, settings, traffic, viz

if fast:
    conversations, turns, interval_s, ready_timeout_s = min(conversations, 4), min(turns, 3), 0.25, 180
cfg = settings.load(namespace=namespace, queue=queue, allow_disruptive=allow_disruptive)  # parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
if deploy.get(conn, name) is None:
    deploy.apply(conn, manifests.llm_inference_service(
        name, f"hf://{model}", queue=cfg.queue, replicas=replicas, gpu=gpu, labels={"llmd-lab/workshop": "true"},
        max_model_len=max_model_len, vllm_args=("--disable-uvicorn-access-log", "--enable-prompt-tokens-details")))
deploy.wait_ready(conn, name, timeout_s=ready_timeout_s, progress=not fast)
ep = deploy.endpoints(conn, name)
source = metrics.PodProxySource(conn.core, conn.namespace, doctor.workload_selector(name))

# %% [markdown]
# ## One reading
#
# A snapshot is every metric of every pod at one moment. Here are the ones this workshop uses, per pod.

# %%
snap = metrics.scrape(source)
names = ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
         "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:request_success_total"]
pd.DataFrame({pod: {n: snap.value(pod, n) for n in names} for pod in snap.pods})

# %% [markdown]
# ## The live panel
#
# The poller takes a reading every `interval_s` seconds in the background and the panel redraws in place: four
# sparklines for the whole pool — TTFT p50 and p95 (from the histogram's change), prefix-cache hit rate, KV-cache
# use of the fullest pod, and requests waiting. Start it, then start traffic in the next cell and watch them move.

# %%
panel = live.LivePanel(f"{name}: vLLM pods, pool-wide")
poller = panel.watch(source, interval_s=interval_s)  # shows the panel and starts the poller that feeds it

# %% [markdown]
# Multi-turn chat: each conversation resends its history, so hit rates climb as conversations progress.

# %%
before = metrics.scrape(source)
df = traffic.run(traffic.Target(ep.gateway, ep.model, name="llm-d", **cfg.tls),
                 traffic.multi_turn(conversations, turns, system_tokens=400, turn_tokens=80, max_tokens=48, seed=seed),
                 concurrency=workers, seed=seed, progress=not fast)
after = metrics.scrape(source)
k8s.wait_for(lambda: panel.updates >= 2, timeout_s=30)  # a short run may end before the 2nd reading
poller.stop()
window = metrics.deltas(before, after)
window[["pod", "requests", "prompt_tokens", "hit_rate", "kv_cache_usage", "waiting", "ttft_p95_s"]]

# %% [markdown]
# The panel above now holds its last state; here it is again as a still picture of the whole run, which is also
# what a saved copy of this notebook shows.

# %% tags=["key-chart"]
panel.finish()

# %% [markdown]
# ## The same story over time
#
# The poller kept every interval. Requests per second shows how the picker spread load; KV-cache use shows how
# full each pod's cache got: workshop traffic stays far below 80 %. The pressure step below shows what happens above.

# %%
timeline = poller.frame()
if not timeline.empty:
    display(viz.metric_timeline(timeline, "requests_per_s") | viz.metric_timeline(timeline, "kv_cache_usage"))
viz.hit_rate_per_pod(window).properties(width=320)

# %% [markdown]
# ## Pressure: a cache that fills up
#
# A pod's KV cache is what is left of `--gpu-memory-utilization` × GPU memory after the weights and activations.
# The `qwen` pods have room for well over a hundred thousand tokens, so workshop traffic never fills them. To see
# what "above 80 %" looks like without a flood of traffic, deploy one replica whose `--gpu-memory-utilization`
# leaves only about 1.25 GiB for the cache once the weights are loaded — about ten thousand tokens for Qwen3
# (0.15 of an L4 for Qwen3-0.6B; the cell computes it for your model) — and send it 24 prompts of 2,000 tokens,
# twelve at a time: twelve conversations want 24,000 tokens of cache, more than twice what it holds.
#
# **Predict first:** what will `vllm:kv_cache_usage_perc` do, and what happens to the requests that do not fit?
#
# The chart shows the pod's KV-cache use against the 80 % line, and beside it the requests running and waiting.
# KV use jumps past 80 % with the first prompts and stays near full. vLLM admits a request only when the cache
# has blocks for it, so the rest wait in its queue (`vllm:num_requests_waiting`); when a running request needs a
# block and none is free, vLLM preempts the most recently admitted one (`vllm:num_preemptions_total`), frees its
# blocks and recomputes it later. Nothing fails: every request is answered, later. That is what "above 80 % means
# pressure" looks like, and why the load-aware and KV-cache scorers steer new requests away from a pod in this
# state. The pod is deleted at the end of the step. On a shared cluster the step takes one more GPU, so it runs
# only with `allow_disruptive=True` and a free GPU in your project's quota; otherwise it is skipped.

# %% tags=["site-chart"]
run_pressure = conn.is_lab or bool(cfg.allow_disruptive)
if run_pressure:
    settings.require_opt_in(conn, cfg, "Notebook 04's pressure step (one more 1-GPU pod)", need_gpus=1)
    if pressure_gpu_memory_utilization is None:  # weights + ~0.75 GiB activations/CUDA overhead + the cache we want
        weights = manifests.model_size(model)
        if weights is None:
            raise ValueError(f"no weight size known for {model}: set pressure_gpu_memory_utilization yourself")
        pressure_gpu_memory_utilization = round(
            (weights.weights_gib + 0.75 + pressure_cache_gib) / manifests.GPU_TYPES[gpu].memory_gib, 3)
    print(f"--gpu-memory-utilization {pressure_gpu_memory_utilization} for {model} on {gpu}")
    small = f"{name}-small-kv"
    deploy.apply(conn, manifests.llm_inference_service(
        small, f"hf://{model}", queue=cfg.queue, replicas=1, gpu=gpu, labels={"llmd-lab/workshop": "true"},
        max_model_len=4096, vllm_args=("--disable-uvicorn-access-log", "--gpu-memory-utilization",
                                       str(pressure_gpu_memory_utilization))))
    deploy.wait_ready(conn, small, timeout_s=ready_timeout_s, progress=not fast)
    small_ep = deploy.endpoints(conn, small)
    small_source = metrics.PodProxySource(conn.core, conn.namespace, doctor.workload_selector(small))
    pressure = metrics.Poller(small_source, interval_s=min(interval_s, 0.05)).start()
    try:
        small_before = metrics.scrape(small_source)
        burst = traffic.run(traffic.Target(small_ep.gateway, small_ep.model, name="small-kv", **cfg.tls),
                            traffic.random_prompts(pressure_requests, prompt_tokens=pressure_prompt_tokens,
                                                   max_tokens=1024, seed=seed),
                            concurrency=pressure_concurrency, seed=seed, progress=not fast)
        small_window = metrics.deltas(small_before, metrics.scrape(small_source))
    finally:
        pressure.stop()
        deploy.delete(conn, small)  # give its GPU back, also when the step fails
    pressure_timeline = pressure.frame()
    readings = len(pressure_timeline)
    peak_kv = float(pressure_timeline["kv_cache_usage"].max()) if readings else float("nan")
    above = float((pressure_timeline["kv_cache_usage"] >= 0.8).mean()) if readings else 0.0
    most_waiting = float(pressure_timeline["waiting"].max()) if readings else 0.0
    preempted = float(small_window["preemptions"].fillna(0).sum())
    print(f"peak KV-cache use {peak_kv:.0%} (at or above 80 % in {above:.0%} of {readings} readings); "
          f"most requests waiting at once {most_waiting:.0f}; preemptions {preempted:.0f}; "
          f"{int(burst['ok'].sum())} of {len(burst)} requests answered")
    if readings:
        line_80 = alt.Chart(pd.DataFrame({"y": [80]})).mark_rule(color="red", strokeDash=[6, 3]).encode(y="y:Q")
        states = pressure_timeline[["time", "running", "waiting"]].melt(id_vars="time", var_name="pod",
                                                                         value_name="requests")  # one line per state
        queue_chart = viz.metric_timeline(states, "requests").encode(color=alt.Color("pod:N", title="requests")).properties(
            title="Requests running and waiting")
        kv_chart = alt.layer(viz.metric_timeline(pressure_timeline, "kv_cache_usage"), line_80).properties(
            title="KV-cache use (%) — red: the 80 % pressure line")
        display((kv_chart | queue_chart).resolve_scale(color="independent"))
else:
    print("Pressure step skipped: on a shared cluster its extra pod needs allow_disruptive=True and a free GPU in "
          "your quota (notebook 01). On the local lab it always runs.")

# %% [markdown]
# ## The same numbers in PromQL (on OpenShift)
#
# On a cluster, OpenShift AI's PodMonitor ships these metrics to the platform Prometheus with a `kserve_` prefix.
# These are the queries behind the panel, ready for the console's *Observe → Metrics* page or a Grafana panel;
# the shipped dashboard (`assets/dashboards/llmd-openshift.json`) has the same panels. On the local lab, run
# `llmd-lab prometheus` in a terminal: a Prometheus on http://127.0.0.1:9091 scrapes the lab's pods as the
# cluster's monitors do, so the same queries and the same dashboard answer there.

# %%
sel = f'namespace="{conn.namespace}"'
promql = {
    "requests/s per pod": f"sum by (pod) (rate(kserve_vllm:request_success_total{{{sel}}}[1m]))",
    "prefix-cache hit rate": f"sum(rate(kserve_vllm:prefix_cache_hits_total{{{sel}}}[5m])) / "
                             f"sum(rate(kserve_vllm:prefix_cache_queries_total{{{sel}}}[5m]))",
    "KV-cache use per pod": f"max by (pod) (kserve_vllm:kv_cache_usage_perc{{{sel}}})",
    "queue per pod": f"sum by (pod) (kserve_vllm:num_requests_waiting{{{sel}}})",
    "TTFT p95": f"histogram_quantile(0.95, sum by (le) (rate(kserve_vllm:time_to_first_token_seconds_bucket{{{sel}}}[5m])))",
}
for title, q in promql.items():
    print(f"{title:24} {q}")
if conn.kind == "OpenShift":
    prom = metrics.PromQLSource(conn.bearer_token(), {"namespace": conn.namespace}, namespace=conn.namespace)
    display(metrics.deltas(before, metrics.scrape(prom)).head())  # Prometheus scrapes every 30 s: coarser
    print(live.grafana_dashboard(conn))  # the shipped dashboard has the same panels
else:
    print("On the lab: run `llmd-lab prometheus` in a terminal, then paste a query into http://127.0.0.1:9091/graph "
          f"or import {live.DASHBOARD_FILE} into a Grafana reading that Prometheus.")

# %% [markdown]
# ## Did it work?
#
# The client counted its answers; the pods counted theirs. They must agree.

# %%
problems = []
served = int(window["requests"].fillna(0).sum())
answered = int(df["ok"].sum())
if panel.updates < 1:
    problems.append(f"the live panel never updated (poller errors: {poller.errors[-1:]}). Hint: can you read "
                    "pods/proxy? `oc auth can-i get pods/proxy`.")
if served != answered:
    problems.append(f"the pods counted {served} finished requests but the client got {answered} answers. Hint: "
                    "other traffic on this service, or a pod restarted mid-run (see window['requests']).")
if answered < len(df):
    problems.append(f"{len(df) - answered} requests failed; see df[~df.ok].")
if run_pressure and not peak_kv >= 0.8:
    problems.append(f"the small-cache pod peaked at {peak_kv:.0%} KV use, below the 80 % line. Hint: lower "
                    "pressure_gpu_memory_utilization or raise pressure_concurrency / pressure_prompt_tokens.")
if run_pressure and not (most_waiting > 0 or preempted > 0):
    problems.append("the small-cache pod was full but no request waited and none was preempted: the burst should "
                    "have queued. Hint: raise pressure_concurrency.")
if run_pressure and not burst["ok"].all():
    problems.append(f"{int((~burst['ok']).sum())} requests of the burst failed: pressure should delay them, not fail them.")
if problems:
    raise AssertionError("Notebook 04 check FAILED:\n- " + "\n- ".join(problems))
pressure_seen = (f"the small cache peaked at {peak_kv:.0%} KV use, up to {most_waiting:.0f} requests waiting, "
                 f"{preempted:.0f} preemptions" if run_pressure else "pressure step skipped (no opt-in)")
print(f"✅ 04 passed: {answered} requests, counted by both sides; panel updated {panel.updates} times; "
      f"{pressure_seen}.")

from llmd_lab.course import progress

progress.record(conn, "04-live-metrics")  # for the instructor's class view (`llmd-lab class`)
