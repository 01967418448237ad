"""`llmd_lab.connect` is callable in every spelling and import order (LIBRARY_NEEDS 1).

Each case runs in a fresh interpreter: the bug was an import-order one (importing the submodule
rebinds the package attribute), which one pytest process, with everything imported, cannot show.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# connect() is replaced by a recorder in llmd_lab.connection, so the check needs no cluster: what matters
# is that each spelling reaches the implementation with the caller's arguments.
PRELUDE = """
import llmd_lab.connection as impl
calls = []
impl.connect = lambda *a, **k: calls.append((a, k)) or "conn"
"""

ORDERS = {
    "package attribute first": "import llmd_lab\nresult = llmd_lab.connect('ns', start_lab=False)",
    "from-import first": "from llmd_lab import connect\nresult = connect('ns', start_lab=False)",
    "submodule imported first": (
        "import llmd_lab.connect\nfrom llmd_lab import connect\nimport llmd_lab\n"
        "assert llmd_lab.connect is connect\nresult = connect('ns', start_lab=False)"
    ),
    "function from the submodule": (
        "from llmd_lab.connect import connect, Connection, ConnectError\n"
        "import llmd_lab.connection as c\nassert Connection is c.Connection and ConnectError is c.ConnectError\n"
        "result = connect('ns', start_lab=False)"
    ),
    "submodule after the package attribute": (
        "import llmd_lab\nfirst = llmd_lab.connect\nimport llmd_lab.connect\n"
        "assert llmd_lab.connect is first\nresult = llmd_lab.connect('ns', start_lab=False)"
    ),
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_connect_is_callable_in_any_import_order(order: str) -> None:
    check = "\nassert result == 'conn', result\nassert calls == [(('ns',), {'start_lab': False})], calls\n"
    code = PRELUDE + ORDERS[order] + check
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_connect_shows_the_function_signature_and_doc() -> None:
    import inspect

    import llmd_lab
    from llmd_lab import connection

    assert callable(llmd_lab.connect)
    assert inspect.signature(llmd_lab.connect) == inspect.signature(connection.connect)
    assert "prefer_lab" in str(inspect.signature(llmd_lab.connect))
    assert llmd_lab.Connection is connection.Connection
