"""``llmd_lab.connect``: the name notebooks call — both a function-like object and a module.

The implementation lives in :mod:`llmd_lab.connection`. This module exists because a submodule and a
package attribute share one name: once ``llmd_lab.connect`` is imported as a module, Python binds the
*module* to ``llmd_lab.connect``, whatever ``llmd_lab/__init__.py`` meant. So the module itself is
made callable (its class gets a ``__call__`` that forwards to :func:`llmd_lab.connection.connect`),
and every spelling gives the same object and works in any import order::

    import llmd_lab; llmd_lab.connect()
    from llmd_lab import connect; connect()
    from llmd_lab.connect import connect; connect()      # the function itself
    from llmd_lab.connect import Connection, ConnectError

To patch connection internals in tests, patch :mod:`llmd_lab.connection` (the call is forwarded at
call time, so a patched ``llmd_lab.connection.connect`` is what ``llmd_lab.connect()`` runs).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from llmd_lab import connection
from llmd_lab.connection import (
    LAB_CLUSTER_NAME,
    LAB_START_TIMEOUT_S,
    SA_DIR,
    ClusterUnreachableError,
    ConnectError,
    Connection,
    NamespaceForbiddenError,
    UnauthorizedError,
    connect,
    lab_home,
    launch_lab,
    running_lab,
)

__all__ = [
    "LAB_CLUSTER_NAME",
    "LAB_START_TIMEOUT_S",
    "SA_DIR",
    "ClusterUnreachableError",
    "ConnectError",
    "Connection",
    "NamespaceForbiddenError",
    "UnauthorizedError",
    "connect",
    "lab_home",
    "launch_lab",
    "running_lab",
]


class _CallableModule(types.ModuleType):
    """A module that can be called: ``llmd_lab.connect(...)`` runs :func:`llmd_lab.connection.connect`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Connection:
        return connection.connect(*args, **kwargs)


_self = sys.modules[__name__]
_self.__class__ = _CallableModule
# help(llmd_lab.connect) / `connect?` / inspect.signature show the function, not this note.
_self.__wrapped__ = connect  # type: ignore[attr-defined]
