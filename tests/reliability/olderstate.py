"""Objects the API server would refuse today but that sit in ``state.db`` anyway (written by an older lab, or
before a validation existed): create a valid object through the store, then rewrite its stored body.

The reliability tests use this to show that controllers isolate such objects whatever the API server's
validation says about new writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from llmd_lab.lab.apiserver.store import Store


async def store_as_older_state(db: Path, obj: dict, corrupt: Callable[[dict], None]) -> dict:
    """Create ``obj`` in the store at ``db`` (closed again), then apply ``corrupt`` to its stored JSON."""
    store = Store(db)
    try:
        created = await store.create(obj)
    finally:
        store.close()
    meta = created["metadata"]
    with closing(sqlite3.connect(db)) as conn:
        (body,) = conn.execute("SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
                               (created["kind"], meta.get("namespace", ""), meta["name"])).fetchone()
        stored = json.loads(body)
        corrupt(stored)
        conn.execute("UPDATE objects SET body=? WHERE kind=? AND namespace=? AND name=?",
                     (json.dumps(stored), created["kind"], meta.get("namespace", ""), meta["name"]))
        conn.commit()
    return stored
