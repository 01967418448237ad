"""`llmd_lab.connect` is the function, in every spelling and import order, with no module-class trick.

There is no ``llmd_lab.connect`` submodule (the implementation is :mod:`llmd_lab.connection`), so nothing
can rebind the package attribute to a module. Each case runs in a fresh interpreter because the old bug
was an import-order one, which one pytest process, with everything imported, cannot show.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

PRELUDE = "import types\n"
ORDERS = {
    "package attribute first": "import llmd_lab\nf = llmd_lab.connect",
    "from-import first": "from llmd_lab import connect as f",
    "implementation module first": "import llmd_lab.connection\nfrom llmd_lab import connect as f\nimport llmd_lab\n"
    "assert llmd_lab.connect is f",
}
CHECK = (
    "\nimport llmd_lab.connection as impl\n"
    "assert f is impl.connect, f\n"
    "assert isinstance(f, types.FunctionType), type(f)\n"
    "from llmd_lab import Connection, ConnectError\n"
    "assert Connection is impl.Connection and ConnectError is impl.ConnectError\n"
)


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_connect_is_the_function_in_any_import_order(order: str) -> None:
    proc = subprocess.run([sys.executable, "-c", PRELUDE + ORDERS[order] + CHECK], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_there_is_no_connect_submodule_to_shadow_it() -> None:
    assert importlib.util.find_spec("llmd_lab.connect") is None


def test_connect_shows_the_function_signature_and_doc() -> None:
    import inspect

    import llmd_lab
    from llmd_lab import connection

    assert inspect.signature(llmd_lab.connect) == inspect.signature(connection.connect)
    assert "prefer_lab" in str(inspect.signature(llmd_lab.connect))
    assert llmd_lab.connect.__doc__ == connection.connect.__doc__
