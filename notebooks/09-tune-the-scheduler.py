# %% [markdown]
# # 09 · Tune the scheduler: predict, then measure
#
# **Goal:** change the endpoint picker's scorer weights, predict what each change does to cache hit rate and
# to load balance, and measure it.
#
# **Time:** 25 minutes · **Needs:** two free GPUs. This notebook creates its own service (`<name>-tune`) and
# deletes it at the end.
#
# **What this notebook does:**
#
# 1. Frees the GPUs of the other workshop services first, then asks for your prediction of hit rate and load
#    balance for each scorer weighting.
# 2. Measures each weighting with the same multi-turn traffic.
# 3. Charts hit rate against load imbalance, one point per weighting.
# 4. Ends with a check: every weighting was measured; then deletes its service.
#
# **Instructor talking points:**
#
# * There is no best weighting, only a best one for a workload: chat with long histories wants prefix weight;
#   short unrelated requests want load weight.
# * A scorer reading a metric that does not exist scores every pod the same — the 3.0 KV-metric bug in
#   notebook 08 silently turns "course" into "prefix + queue".
# * Change one weight at a time and measure; predictions are usually right in direction, wrong in size.
#
# **Chart:** Prefix-cache hit rate against load imbalance, one point per scorer weighting.
#
# The endpoint picker (EPP) scores every candidate pod with each configured *scorer* and picks the highest
# weighted sum. Two forces pull against each other:
#
# * the **prefix-cache scorer** wants the pod that already holds the prompt's start (hit rate up, but a popular
#   prefix piles onto one pod);
# * the **queue** and **KV-cache utilisation** scorers want the least busy pod (balance up, hits down).
#
# The weights decide the compromise. KServe's default is prefix 2 / load 1; the course's configuration weighs
# queue 2, KV-cache 2, prefix 3.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
name = "qwen-tune"
model = "Qwen/Qwen3-0.6B"
replicas = 2
gpu = "g6.4xlarge"
max_model_len = 8192  # longest prompt + answer vLLM accepts (a model's native length may not fit one L4)
requests = 48  # requests per configuration
workers = 6
ready_timeout_s = 900
cleanup = True
fast = False
seed = 0

# %%
import altair as alt
import pandas as pd
from IPython.display import display

from llmd_lab import connect, deploy, doctor, manifests, metrics, settings, traffic, viz

if fast:
    requests, workers, ready_timeout_s = min(requests, 16), min(workers, 4), min(ready_timeout_s, 180)
cfg = settings.load(namespace=namespace, queue=queue)  # set once in notebook 00; parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
configs = {
    "prefix only": {"prefix-cache-scorer": 1},
    "queue only": {"queue-scorer": 1},
    "course (queue 2, kv 2, prefix 3)": dict(manifests.COURSE_WEIGHTS),
}
print(manifests.to_yaml(manifests.scheduler_config(configs["course (queue 2, kv 2, prefix 3)"])))

# %% [markdown]
# ## Free the GPUs first
#
# This notebook needs GPUs of its own (`replicas` for the service it tunes). The service from notebook 02 is not used here, and on a shared cluster
# (or under a Kueue quota) its GPUs are exactly what your new pods would wait for: delete the workshop's other
# services first, and wait until their pods are gone. Notebook 02 creates it again if you go back.

# %%
freed = deploy.delete_workshop_services(conn, keep=(name,))
print(f"deleted {freed}: their GPUs are free" if freed else "no other workshop service holds GPUs here")

# %% [markdown]
# ## Predict
#
# The workload mixes a few long shared documents (RAG-style: many questions about 4 documents). Rank the three
# configurations by hit rate and by imbalance (busiest pod's share of requests ÷ a fair share; 1.0 is perfect).

# %%
my_ranking_hit_rate = None  # ← e.g. ["prefix only", "course (queue 2, kv 2, prefix 3)", "queue only"]

# %% [markdown]
# ## Measure
#
# For each configuration: apply the service with that `EndpointPickerConfig`, wait until the picker has restarted
# with it, send the same workload (fresh documents each time so caches start cold), and read hit rate and
# requests per pod from the pods' own counters.

# %%
source = metrics.PodProxySource(conn.core, conn.namespace, doctor.workload_selector(name))

rows = []
for i, (label, weights) in enumerate(configs.items()):
    deploy.apply(conn, manifests.llm_inference_service(
        name, f"hf://{model}", queue=cfg.queue, replicas=replicas, gpu=gpu, scheduler=weights, max_model_len=max_model_len,
        labels={"llmd-lab/workshop": "true"}))
    deploy.wait_ready(conn, name, timeout_s=ready_timeout_s, progress=not fast)
    # Ready stays True while the old picker still serves: wait until the new EndpointPickerConfig has rolled out.
    deploy.wait_rolled_out(conn, name, "scheduler", timeout_s=ready_timeout_s, progress=not fast)
    ep = deploy.endpoints(conn, name)
    before = metrics.scrape(source)
    df = traffic.run(traffic.Target(ep.gateway, ep.model, **cfg.tls), traffic.rag(requests, documents=4, doc_tokens=800,
                     seed=seed + 10 * (i + 1)), concurrency=workers, seed=seed, label=label, progress=not fast)
    d = metrics.deltas(before, metrics.scrape(source))
    per_pod = d["requests"].fillna(0)
    rows.append({"config": label, "hit_rate": d["prefix_cache_hits"].sum() / max(d["prefix_cache_queries"].sum(), 1),
                 "imbalance": per_pod.max() / max(per_pod.mean(), 1e-9), "ttft_p95_ms": df["ttft_s"].quantile(0.95) * 1000,
                 "errors": int((~df["ok"]).sum())})
results = pd.DataFrame(rows)
results.round(3)

# %% [markdown]
# Up and right is the trade-off: more hits usually cost balance. The course's weights aim for the corner with
# most of the hits and little of the imbalance.

# %% tags=["key-chart"]
alt.Chart(results, title="Hit rate against load imbalance").mark_circle(size=200).encode(
    x=alt.X("imbalance:Q", title="busiest pod ÷ fair share", scale=alt.Scale(zero=False)),
    y=alt.Y("hit_rate:Q", title="prefix-cache hit rate (%)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
    color=alt.Color("config:N", legend=alt.Legend(labelLimit=400)),
    tooltip=["config", "hit_rate", "imbalance", "ttft_p95_ms"]).properties(width=360)

# %%
measured = results.sort_values("hit_rate", ascending=False)["config"].tolist()
if my_ranking_hit_rate:
    right = sum(a == b for a, b in zip(my_ranking_hit_rate, measured, strict=False))
    print(f"your ranking got {right} of {len(measured)} positions right")
print("measured ranking by hit rate:", measured)

# %% [markdown]
# ## Did it work?

# %%
by = results.set_index("config")
problems = []
if results["errors"].sum():
    problems.append(f"{results['errors'].sum()} requests failed. Hint: print(deploy.explain(conn, name)).")
if not by.loc["prefix only", "hit_rate"] > by.loc["queue only", "hit_rate"]:
    problems.append("prefix-only scoring should hit the cache more than queue-only scoring:\n"
                    + results.round(3).to_string() + "\nHint: did the new EndpointPickerConfig take effect?")
if cleanup:
    deploy.delete(conn, name)
if problems:
    raise AssertionError("Notebook 09 check FAILED:\n- " + "\n- ".join(problems))
print("✅ 09 passed: " + "; ".join(f"{r.config}: hit {r.hit_rate:.0%}, imbalance {r.imbalance:.2f}" for r in results.itertuples()))

from llmd_lab.course import progress

progress.record(conn, "09-tune-the-scheduler")  # for the instructor's class view (`llmd-lab class`)
