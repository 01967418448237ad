"""Storage and watch bus: what etcd plus the watch cache are to kube-apiserver, and nothing more.

Objects live in an in-memory index (reads never touch disk) and are written through to SQLite, one
transaction per object write, so a crash leaves whole objects only and ``close()``/reopen loses nothing.
Every write gets the next value of one global ``resourceVersion``; the bus keeps a bounded history of
changes for watches that resume from a version. Storage knows no verbs, kinds or validation: the REST layer
(rest.py) decides what to write, and the lifecycle controllers (lifecycle/) react to what was written.

After each commit the change is handed to the registered observers (the lifecycle controllers) through a
queue drained on the spot: a controller that writes while reacting only queues its change, so cascades
(namespace contents, dependents) run iteratively, in commit order, and are complete when the write that
started them returns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.bus import Change, EventBus, Filter, GroupKind, Subscriber, WatchEvent

__all__ = ["Key", "Observer", "Storage"]

log = logging.getLogger(__name__)

Key = tuple[str, str, str, str]  # group, kind, namespace ("" when cluster-scoped), name
Observer = Callable[[Change], None]
DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024


def encode(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Storage:
    """See the module docstring."""

    def __init__(self, path: str | Path = ":memory:", *, history: int = 10_000,
                 history_bytes: int = DEFAULT_HISTORY_BYTES) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (grp TEXT, kind TEXT, namespace TEXT, name TEXT, rv INTEGER,"
            " body TEXT, PRIMARY KEY (grp, kind, namespace, name))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._objects: dict[GroupKind, dict[str, dict[str, dict]]] = {}
        self._by_uid: dict[str, Key] = {}
        self._dependents: dict[str, set[Key]] = {}
        self._encoded: dict[int, str] = {}  # id(stored object) -> its JSON, reused by list responses
        self._observers: list[Observer] = []
        self._pending: deque[Change] = deque()
        self._draining = False
        row = self._db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
        self._rv = int(row[0]) if row else 0
        self._load()
        self.bus = EventBus(history, self._rv, history_bytes)

    def _load(self) -> None:
        rows = self._db.execute("SELECT grp, kind, namespace, name, body FROM objects ORDER BY rv").fetchall()
        for grp, kind, ns, name, body in rows:
            obj = json.loads(body)
            self._index((grp, kind, ns, name), obj)
            self._encoded[id(obj)] = body

    def close(self) -> None:
        self._db.close()

    @property
    def rv(self) -> int:
        return self._rv

    # ------------------------------------------------------------------ reads (stored objects: never mutate)
    def find(self, key: Key) -> dict | None:
        return self._objects.get((key[0], key[1]), {}).get(key[2], {}).get(key[3])

    def by_namespace(self, gk: GroupKind) -> dict[str, dict[str, dict]]:
        """``{namespace: {name: object}}`` of one group kind (``""`` holds cluster-scoped objects)."""
        return self._objects.get(gk, {})

    def group_kinds(self) -> list[GroupKind]:
        return list(self._objects)

    def keys_in_namespace(self, namespace: str) -> list[Key]:
        return [(gk[0], gk[1], namespace, name) for gk, by_ns in list(self._objects.items())
                for name in sorted(by_ns.get(namespace, {}))]

    def namespace_is_empty(self, namespace: str) -> bool:
        return not any(by_ns.get(namespace) for by_ns in self._objects.values())

    def key_of_uid(self, uid: str) -> Key | None:
        return self._by_uid.get(uid)

    def dependents(self, uid: str) -> list[Key]:
        """Keys of the objects with an ownerReference to ``uid``, sorted."""
        return sorted(self._dependents.get(uid, ()))

    def encoded(self, obj: dict) -> str:
        """The JSON text of an object (cached for stored objects)."""
        cached = self._encoded.get(id(obj))
        return cached if cached is not None else encode(obj)

    # ------------------------------------------------------------------ index
    def _index(self, key: Key, obj: dict) -> None:
        grp, kind, ns, name = key
        self._objects.setdefault((grp, kind), {}).setdefault(ns, {})[name] = obj
        meta = obj["metadata"]
        self._by_uid[meta["uid"]] = key
        for ref in meta.get("ownerReferences") or []:
            self._dependents.setdefault(ref.get("uid", ""), set()).add(key)

    def _unindex(self, key: Key, obj: dict) -> None:
        grp, kind, ns, name = key
        bucket = self._objects.get((grp, kind), {}).get(ns)
        if bucket is not None:
            bucket.pop(name, None)
            if not bucket:
                self._objects[(grp, kind)].pop(ns, None)
        meta = obj["metadata"]
        self._by_uid.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            deps = self._dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(key)
                if not deps:
                    self._dependents.pop(ref.get("uid", ""), None)

    # ------------------------------------------------------------------ writes
    def commit(self, key: Key, old: dict | None, new: dict | None) -> dict | None:
        """Write one object change in one transaction, index it, tell the watchers, then the observers.

        ``new`` None deletes; returns the stored object, or for a deletion its last state stamped with the
        deletion's resourceVersion (what the DELETED event carries)."""
        rv = self._rv + 1
        if new is not None:
            new["metadata"]["resourceVersion"] = str(rv)
        body = encode(new) if new is not None else None
        size = len(body) if body is not None else len(self.encoded(old)) if old is not None else 0
        self._write(key, rv, body)
        self._rv = rv
        if old is not None:
            self._unindex(key, old)
            self._encoded.pop(id(old), None)
        if new is not None:
            self._index(key, new)
            self._encoded[id(new)] = body  # type: ignore[assignment]
        last = new
        if new is None and old is not None:
            last = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)}}
        change = Change(rv, (key[0], key[1]), last if new is None else old, new)
        self.bus.publish(change, size)
        self._pending.append(change)
        self._drain()
        return last

    def _write(self, key: Key, rv: int, body: str | None) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if body is None:
                self._db.execute("DELETE FROM objects WHERE grp=? AND kind=? AND namespace=? AND name=?", key)
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO objects (grp, kind, namespace, name, rv, body) VALUES (?,?,?,?,?,?)",
                    (*key, rv, body),
                )
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(rv),))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ observers (lifecycle controllers)
    def observe(self, observer: Observer) -> None:
        """Call ``observer(change)`` after every commit (see the module docstring)."""
        self._observers.append(observer)

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._pending:
                change = self._pending.popleft()
                for observer in self._observers:
                    try:
                        observer(change)
                    except errors.ApiError as exc:  # a controller's write refused: it logs and carries on
                        log.warning("%s reacting to rv %s: %s", getattr(observer, "__qualname__", observer),
                                    change.rv, exc)
        finally:
            self._draining = False

    # ------------------------------------------------------------------ watch
    def open_watch(self, gk: GroupKind, matches: Filter, since: int | None) -> tuple[list[WatchEvent], Subscriber]:
        """Events to replay and the subscription for live ones, registered in one step.

        ``since`` None replays the current objects as ADDED (sorted by resourceVersion); otherwise the
        history after it, 410 Gone when the history no longer reaches back that far."""
        if since is None:
            objs = list(self._iter(gk))
            objs.sort(key=lambda o: int(o["metadata"]["resourceVersion"]))
            initial = [WatchEvent("ADDED", o) for o in objs if matches(o)]
        else:
            if since < self.bus.floor_rv:
                raise errors.gone(f"too old resource version: {since} ({self.bus.floor_rv})")
            initial = self.bus.since(since, gk, matches)
        return initial, self.bus.subscribe(gk, matches)

    def _iter(self, gk: GroupKind) -> Iterator[dict]:
        for by_name in self._objects.get(gk, {}).values():
            yield from by_name.values()
