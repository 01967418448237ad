# %% [markdown]
# # 06 · Tensor parallelism: when a model does not fit one GPU
#
# **Goal:** see why some models cannot run in replicas mode, deploy one sharded over several GPUs of one node
# (tensor parallelism) and over several nodes (a LeaderWorkerSet), and compare what each layout costs.
#
# **Time:** 20 minutes · **Needs:** notebook 01 green; a multi-GPU node (`g6.12xlarge`, 4 × L4) and two free
# single-GPU nodes. This notebook deletes what it creates at the end, to give the GPUs back.
#
# **What this notebook does:**
#
# 1. Frees the GPUs of the other workshop services first, then asks for a model that does not fit one L4, on
#    purpose, and reads why it is refused.
# 2. Deploys one replica over `tensor` GPUs of one node and shows its pod and GPUs.
# 3. Deploys the same model over two nodes as a LeaderWorkerSet (when `multi_node`).
# 4. Compares the layouts' KV capacity, concurrency and hourly cost with the planner.
# 5. Ends with a check: the pods match each requested layout; then deletes its services.
#
# **Instructor talking points:**
#
# * Replicas for throughput and cache reuse; tensor parallelism when the model (or its context) does not fit.
# * Tensor parallelism needs fast links between GPUs: inside one node is the easy case; across nodes needs
#   RDMA-class networking in production.
# * The step-08 demo chose replicas because its quantised Mistral (~12 GB) fits one L4.
# * Ask: "what would you do with a 70B model on L4s?" (quantise, or tensor=4 on a 4-GPU node, or both).
#
# **Chart:** KV-cache room left after the weights, and the hourly price, of each layout: replicas, tensor
# parallelism on one node, two nodes.
#
# Replicas mode copies the *whole* model onto each GPU. An L4 has 24 GB; vLLM uses 90 % of it and needs room
# for the KV cache next to the weights. A 24-billion-parameter model in 16-bit weights needs about 44 GiB for the
# weights alone: it cannot start on one L4, however many replicas you ask for. **Tensor parallelism** splits
# every layer's matrices over N GPUs, which then work on each token together (and talk over NVLink/PCIe at every
# layer). **Multi-node** on OpenShift AI 3.0 means *data parallel*: a LeaderWorkerSet whose pods each run a full
# copy of the model as one rank of a data-parallel group (KServe ships only the `*-worker-data-parallel` presets;
# the pipeline-parallel ones are referenced but not shipped, so `parallelism.pipeline` with a `worker` fails).
# It adds throughput (and, for mixture-of-experts models, expert parallelism), not room for a bigger dense model.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
name = "llama-tp"  # the tensor-parallel service this notebook creates (and deletes)
model = "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"  # an ungated FP8 build of Llama 3.1 8B (no access request)
tensor = 2  # GPUs per replica, all on one node
gpu = "g6.12xlarge"  # a node type with at least `tensor` GPUs
big_model = "mistralai/Mistral-Small-24B-Instruct-2501"  # the one that does not fit one L4
multi_node = True  # also deploy the 2-node data-parallel LeaderWorkerSet layout
dp_model = "Qwen/Qwen3-0.6B"  # the data-parallel layout's model: each rank holds a full copy on one GPU
replicas = 1
requests = 12
slo_p95_ttft_ms = 500  # the planner's service-level objective
ready_timeout_s = 1200
cleanup = True  # delete this notebook's services at the end
fast = False
seed = 0

# %%
import pandas as pd

from llmd_lab import connect, deploy, doctor, k8s, manifests, planner, settings, traffic

if fast:
    requests, ready_timeout_s = min(requests, 6), min(ready_timeout_s, 180)
cfg = settings.load(namespace=namespace, queue=queue)  # set once in notebook 00; parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
# Tensor-parallel and multi-node layouts take several GPUs at once: on a shared cluster only with your opt-in.
settings.require_opt_in(conn, cfg, "Notebook 06 (multi-GPU layouts)", need_gpus=replicas * tensor + (2 if multi_node else 0))
label = {"llmd-lab/workshop": "true"}

# %% [markdown]
# ## Free the GPUs first
#
# This notebook needs GPUs of its own (`tensor` on one node, and two nodes for the data-parallel layout). The service from notebook 02 is not used here, and on a shared cluster
# (or under a Kueue quota) its GPUs are exactly what your new pods would wait for: delete the workshop's other
# services first, and wait until their pods are gone. Notebooks 07 and 08 create it again when they need it.

# %%
freed = deploy.delete_workshop_services(conn)
print(f"deleted {freed}: their GPUs are free" if freed else "no other workshop service holds GPUs here")

# %% [markdown]
# ## Step 1 — ask for the impossible, on purpose
#
# The builder knows roughly how big well-known models are and how much memory each GPU type has. It refuses a
# layout that cannot start, and says what to change. This is cheaper than a pod that crashes with an
# out-of-memory error after a ten-minute download.

# %%
too_big = manifests.llm_inference_service("too-big", f"hf://{big_model}", gpu="g6.4xlarge", tensor=1)
try:
    manifests.validate(too_big)
    refused = None
except manifests.ManifestError as exc:
    refused = str(exc)
print(refused or "accepted?!")

# %% [markdown]
# ## Step 2 — one replica over `tensor` GPUs of one node
#
# One pod per replica with N GPUs, so the scheduler must find a node with N free GPUs. How the builder wires it is
# how it must be wired on OpenShift AI 3.0: the single-node preset (`kserve-config-llm-template`) ignores
# `parallelism.tensor`, so the pod itself passes `--tensor-parallel-size N` (in `VLLM_ADDITIONAL_ARGS`) and requests
# N GPUs; `parallelism.tensor` stays set for readers and for KServe's validation. (Source:
# red-hat-data-services/kserve@rhoai-3.0 `config/llmisvc/config-llm-template.yaml` and the
# `config-*-worker-data-parallel.yaml` presets, which are the ones that read `parallelism.tensor`.)

# %%
tp = manifests.llm_inference_service(name, f"hf://{model}", queue=cfg.queue, replicas=replicas, tensor=tensor, gpu=gpu, labels=label)
print(manifests.to_yaml(tp))
deploy.apply(conn, tp)
deploy.wait_ready(conn, name, timeout_s=ready_timeout_s, progress=not fast)

# %%
def pod_table(svc_name):
    """The model's pods (not the endpoint picker's): where they run and how many GPUs each holds."""
    pods = deploy.pods_frame(conn, svc_name)
    served = pods.loc[pods["role"] != "scheduler", ["pod", "role", "component", "node", "gpus", "phase", "ready"]]
    return served.reset_index(drop=True)

tp_pods = pod_table(name)
tp_pods

# %% [markdown]
# Send a few requests. A sharded replica is one model: every request uses all its GPUs.

# %%
ep = deploy.endpoints(conn, name)
df_tp = traffic.run(traffic.Target(ep.gateway, ep.model, name=f"tensor={tensor}", **cfg.tls),
                    traffic.random_prompts(requests, prompt_tokens=512, max_tokens=64, seed=seed),
                    concurrency=4, seed=seed, progress=not fast)
traffic.summary(df_tp).round(3)

# %% [markdown]
# ## Step 3 — two nodes, data parallel (LeaderWorkerSet)
#
# With `nodes: 2` the builder sets `parallelism.data: 2`, `dataLocal: 1` and a `worker` spec; KServe picks the
# `kserve-config-llm-worker-data-parallel` preset and creates a **LeaderWorkerSet** of two pods on two nodes. Each
# pod is one data-parallel rank holding a *full* copy of the model on its GPU, coordinated by vLLM's
# data-parallel RPC — so the model must fit one GPU; we use the small `dp_model` here. It needs the LeaderWorkerSet operator (notebook 01 checks it) and fast networking between
# the nodes in production. Here we look at its shape and that it becomes Ready.

# %%
mn_name = f"{name}-mn"
mn = manifests.llm_inference_service(mn_name, f"hf://{dp_model}", queue=cfg.queue, replicas=1, tensor=1, nodes=2, gpu="g6.4xlarge",
                                     labels=label)
if multi_node:
    deploy.apply(conn, mn)
    deploy.wait_ready(conn, mn_name, timeout_s=ready_timeout_s, progress=not fast)
    display_mn = pod_table(mn_name)
    lws_names = {p["metadata"]["labels"].get("leaderworkerset.sigs.k8s.io/name")
                 for p in k8s.pods(conn, conn.namespace, doctor.workload_selector(mn_name))}  # fmt: skip
    print("LeaderWorkerSet:", ", ".join(sorted(n for n in lws_names if n)))
else:
    display_mn = pd.DataFrame()
display_mn

# %% [markdown]
# ## Step 4 — what does each layout cost?
#
# First the memory arithmetic: GPU memory left for the KV cache after the weights (more KV cache = more
# concurrent conversations), and whether the model fits at all. Prices are data, with their source and date
# (`llmd_lab/data/gpu_prices.yaml`): check them for your region before quoting them.

# %%
size = manifests.model_size(model) or manifests.ModelSize(8.0)  # unknown model: assume 8B
print("prices:", planner.PRICES)
rows = []
for layout, node_type, nodes_needed, gpus in [
    (f"replicas: 1 × {model.split('/')[-1]} per g6.4xlarge", "g6.4xlarge", 1, 1),
    (f"tensor={tensor} on {gpu}", gpu, 1, tensor),
    ("2 nodes × 1 GPU, data parallel (LeaderWorkerSet)", "g6.4xlarge", 2, 2),
]:
    g = manifests.GPU_TYPES[node_type]
    per_copy = gpus // nodes_needed if "data parallel" in layout else gpus  # each DP rank holds a full copy
    usable = per_copy * g.memory_gib * manifests.GPU_MEMORY_UTILIZATION
    rows.append({"layout": layout, "gpus": gpus, "usd_per_hour": nodes_needed * planner.PRICES.usd_per_hour[node_type],
                 "weights_gib": round(size.weights_gib, 1), "kv_cache_gib": round(usable - size.weights_gib, 1),
                 "fits": usable - size.weights_gib > manifests.MIN_KV_FRACTION * usable})
layouts = pd.DataFrame(rows)
layouts

# %% tags=["key-chart"]
import altair as alt

from llmd_lab import viz  # sets the offline SVG renderer

kv = alt.Chart(layouts, title="KV-cache room per layout", width=260).mark_bar().encode(
    y=alt.Y("layout:N", title=None), x=alt.X("kv_cache_gib:Q", title="KV cache after weights (GiB)"),
    color=alt.Color("fits:N", title="model fits"))
price = alt.Chart(layouts, title="Price per layout", width=180).mark_bar().encode(
    y=alt.Y("layout:N", axis=None), x=alt.X("usd_per_hour:Q", title="Price (USD per hour)"))
kv | price

# %% [markdown]
# Then capacity and price per token, from the **planner**: it replays step-08's multi-turn traffic through the
# lab's simulated vLLM (and, for llm-d, the real endpoint-picker code) in virtual time, finds the highest request
# rate each layout sustains with P95 TTFT under the SLO, and divides the hourly price by the tokens produced. It is
# a model — read its assumptions before believing a winner — but it ranks layouts the way a benchmark would.
# Layouts the model does not fit are left out.

# %%
candidates = [planner.Layout(2, 1, "g6.4xlarge"), planner.Layout(1, tensor, gpu), planner.Layout(4, 1, "g6.4xlarge")]
fitting = []
for lay in candidates[: 2 if fast else 3]:
    try:
        manifests.validate(manifests.llm_inference_service("probe", f"hf://{model}", queue=cfg.queue, replicas=lay.replicas,
                                                           tensor=lay.tensor, gpu=lay.instance_type))
        fitting.append(lay)
    except manifests.ManifestError:
        print(f"skipped {lay.name}: {model} does not fit")
costs = planner.plan(model, layouts=fitting, slo_p95_ttft_s=slo_p95_ttft_ms / 1000,
                     workload=traffic.multi_turn(4 if fast else 20, 3 if fast else 6, seed=seed),
                     duration_s=3 if fast else 15, iterations=1 if fast else 2, seed=seed)
costs

# %% [markdown]
# Read it this way: if the model fits one GPU, replicas mode buys independent KV caches (and routing wins).
# Tensor parallelism buys *room* — for a bigger model or a longer context — with one shared cache instead of
# several. Compare the price of one 4-GPU node with four 1-GPU nodes from the price data (next cell) rather than
# from memory: list prices differ by region and change.

# %%
four_small, one_big = 4 * planner.PRICES.usd_per_hour["g6.4xlarge"], planner.PRICES.usd_per_hour["g6.12xlarge"]
print(f"4 × g6.4xlarge ${four_small:.2f}/h vs 1 × g6.12xlarge ${one_big:.2f}/h ({planner.PRICES.as_of})")


# %% [markdown]
# ## Did it work?

# %%
problems = []
if refused is None:
    problems.append(f"validation accepted {big_model} on a single L4. Hint: manifests.model_size must know it.")
if not len(tp_pods) or not (tp_pods["gpus"] == tensor).all():
    problems.append(f"expected each pod of {name} to request {tensor} GPUs: {tp_pods.to_dict('records')}")
if not df_tp["ok"].all():
    problems.append(f"{int((~df_tp['ok']).sum())} requests to the tensor-parallel service failed: "
                    f"{df_tp[~df_tp['ok']]['error'].iloc[0]}")
if costs.table.empty or costs.table["capacity_rps"].isna().all():
    problems.append(f"the planner found no layout meeting P95 TTFT ≤ {slo_p95_ttft_ms} ms. Hint: raise slo_p95_ttft_ms.")
if multi_node and display_mn["node"].nunique() < 2:
    problems.append(f"the multi-node service should span 2 nodes: {display_mn.to_dict('records')}. "
                    "Hint: print(deploy.explain(conn, mn_name)).")
if cleanup:
    for svc_name in (name, mn_name):
        deploy.delete(conn, svc_name)
if problems:
    raise AssertionError("Notebook 06 check FAILED:\n- " + "\n- ".join(problems))
print(f"✅ 06 passed: {model} on {tensor} GPUs of one node"
      + (" and data parallel over 2 nodes (LeaderWorkerSet)" if multi_node else "") + f"; {big_model} refused on one L4. "
      + costs.summary().splitlines()[-1])

from llmd_lab.course import progress

progress.record(conn, "06-tensor-parallelism")  # for the instructor's class view (`llmd-lab class`)
