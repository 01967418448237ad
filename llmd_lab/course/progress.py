"""Which notebooks an attendee has passed: one ConfigMap in their project, written by each notebook's check.

Why a ConfigMap in the attendee's own project: the attendee can always write there (on a cluster they are its
admin; in the lab the workbench role allows it), it needs no extra service, and the instructor, who can read
every project, lists them all with one label selector (the class view).
"""

from __future__ import annotations

import datetime as dt

from llmd_lab import k8s
from llmd_lab.connection import Connection

NAME = "llmd-lab-progress"
LABEL = "llmd-lab/progress"


def passed(conn: Connection, namespace: str | None = None) -> dict[str, str]:
    """``{notebook slug: time it last passed}`` for one project ({} before the first pass)."""
    cm = k8s.get(conn, "v1", "ConfigMap", NAME, namespace or conn.namespace)
    return dict((cm or {}).get("data") or {})


def record(conn: Connection, slug: str) -> dict[str, str]:
    """Note that ``slug`` passed now; prints, rather than raises, when the project is not writable.

    The check already passed: failing the notebook because the instructor's bookkeeping could not be written
    would teach the wrong thing. The message says what is missing.
    """
    try:
        data = {**passed(conn), slug: dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        k8s.apply(conn, {"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": NAME, "namespace": conn.namespace, "labels": {LABEL: "true"}},
                         "data": data})
        return data
    except Exception as exc:  # an ApiException (403) or a lab without ConfigMaps: say so, keep the pass
        print(f"(progress not recorded for the instructor: {type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
        return {}


def class_progress(conn: Connection) -> dict[str, dict[str, str]]:
    """Every project's passed notebooks, for the instructor (needs list on ConfigMaps in all namespaces)."""
    return {cm["metadata"]["namespace"]: dict(cm.get("data") or {})
            for cm in k8s.list_objects(conn, "v1", "ConfigMap", label_selector=f"{LABEL}=true")
            if cm["metadata"]["name"] == NAME}
