# %% [markdown]
# # 10 · Clean up: give the GPUs back
#
# **Goal:** delete everything the workshop created — and only that — and confirm the GPUs are free again.
#
# **Time:** 5 minutes · **Needs:** nothing; safe to run at any time and as often as you like.
#
# **What this notebook does:**
#
# 1. Lists the workshop's services (label `llmd-lab/workshop=true`) and the GPUs they hold.
# 2. Deletes them and waits until KServe has removed their pods.
# 3. Ends with a check: no workshop service is left and the project holds no GPUs.
#
# **Instructor talking points:**
#
# * Delete the LLMInferenceService, not its Deployment: KServe would recreate children you delete by hand.
# * On a shared cluster, label what you create; clean-up by label is safe, clean-up by name pattern is not.
# * If a delete hangs, look for finalizers on the object (`oc get llmisvc <name> -o yaml`).
#
# **Chart:** GPUs held in your project before and after the clean-up.
#
# GPUs are the expensive part: an idle L4 node costs the same per hour as a busy one. Every object the
# notebooks created carries the label `llmd-lab/workshop=true`, so this notebook deletes exactly those
# LLMInferenceServices and waits until KServe has removed their pods. Other people's services in the same project
# are left alone.

# %% tags=["parameters"]
namespace = None  # your project; None: your saved settings (notebook 00), else your workbench / `oc login` project
queue = None  # Kueue LocalQueue for your services; None: saved settings, else your project's only LocalQueue
name = "qwen"
model = "Qwen/Qwen3-0.6B"
replicas = 0
requests = 0
workshop_label = "llmd-lab/workshop"  # the label every workshop object carries (value "true")
fast = False
seed = 0

# %% [markdown]
# ## What the workshop left behind
#
# First look, then delete: the services carrying the workshop label, the pods they run and the GPUs those pods
# hold. Services without the label are listed too — they are someone else's, and this notebook leaves them alone.

# %%
import altair as alt
import pandas as pd

# llmd_lab.viz is imported for its side effect: altair draws charts as SVG in the kernel (no CDN needed)
from llmd_lab import connect, deploy, doctor, k8s, manifests, settings, viz

cfg = settings.load(namespace=namespace, queue=queue)  # set once in notebook 00; parameters override
conn = connect(namespace=cfg.namespace)
cfg = settings.discover(conn, cfg)
selector = f"{workshop_label}=true"

def gpus_held():
    total = 0
    for p in k8s.pods(conn, conn.namespace):
        if p["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        for c in p["spec"]["containers"]:
            total += int(((c.get("resources") or {}).get("requests") or {}).get(manifests.GPU_RESOURCE, 0))
    return total

ours = k8s.list_objects(conn, manifests.API_VERSION, manifests.KIND, conn.namespace, label_selector=selector)
others = [o["metadata"]["name"] for o in k8s.list_objects(conn, manifests.API_VERSION, manifests.KIND, conn.namespace)
          if o["metadata"]["name"] not in {x["metadata"]["name"] for x in ours}]
before = gpus_held()
print(f"workshop services: {[o['metadata']['name'] for o in ours] or 'none'}; left alone: {others or 'none'}")
print(f"GPUs requested by pods in {conn.namespace}: {before}")
frames = [deploy.pods_frame(conn, o["metadata"]["name"]).assign(service=o["metadata"]["name"]) for o in ours]
pd.concat(frames, ignore_index=True)[["service", "pod", "role", "node", "gpus", "phase"]] if frames else "no workshop pods"

# %% [markdown]
# ## Delete and wait
#
# Deletion is in the foreground: the call returns when the service *and* its pods are gone, not when the delete
# was accepted. That is the moment the GPUs are really free.

# %% tags=["key-chart"]
for o in ours:
    deploy.delete(conn, o["metadata"]["name"])
    print("deleted", o["metadata"]["name"])
after = gpus_held()
usage = pd.DataFrame({"when": ["before", "after"], "gpus": [before, after]})
alt.Chart(usage, title=f"GPUs held in {conn.namespace}").mark_bar().encode(
    x=alt.X("when:N", sort=None, title=None), y=alt.Y("gpus:Q", title="GPUs requested (count)", axis=alt.Axis(tickMinStep=1, format="d")))

# %% [markdown]
# ## After the workshop: give the GPU nodes back (instructor)
#
# Deleting the services frees the GPUs; the GPU *nodes* keep costing money until their MachineSet is scaled down.
# That is cluster-wide and the instructor's job (an attendee cannot list MachineSets). On OpenShift the
# instructor runs:
#
# ```bash
# oc get machinesets -n openshift-machine-api                     # find the GPU MachineSets (e.g. *-g6-*)
# oc scale machineset <gpu-machineset> -n openshift-machine-api --replicas=0
# oc get machines -n openshift-machine-api -w                     # watch the GPU machines go away
# ```
#
# A cluster autoscaler with a `MachineAutoscaler` (minReplicas 0) does the same by itself once the GPU nodes stay
# idle; scale back up before the next session, since a new GPU node takes several minutes to join and the GPU
# operator needs a few more to advertise `nvidia.com/gpu`. (Source: OpenShift documentation, "Manually scaling a
# compute machine set" and "Applying autoscaling to an OpenShift Container Platform cluster".) The local lab has
# no MachineSets: `llmd-lab down` stops it.


# %% [markdown]
# ## Did it work?

# %%
left = k8s.list_objects(conn, manifests.API_VERSION, manifests.KIND, conn.namespace, label_selector=selector)
left_pods = [p for o in ours for p in k8s.pods(conn, conn.namespace, doctor.all_pods_selector(o["metadata"]["name"]))]
problems = []
if left:
    problems.append(f"still there: {[o['metadata']['name'] for o in left]}. Hint: check finalizers.")
if left_pods:
    problems.append(f"{len(left_pods)} workshop pods remain: {[p['metadata']['name'] for p in left_pods]}.")
if problems:
    raise AssertionError("Notebook 10 check FAILED:\n- " + "\n- ".join(problems))
print(f"✅ 10 passed: deleted {len(ours)} service(s); GPUs held in {conn.namespace}: {before} → {after}.")

from llmd_lab.course import progress

progress.record(conn, "10-cleanup")  # for the instructor's class view (`llmd-lab class`)
