"""``python -m llmd_lab.lab``: the lab process that ``llmd-lab up`` spawns (see ``llmd_lab.lab.server.main``)."""

import sys

# jsonschema imports rfc3987_syntax when it is installed (jupyter pulls it in) and builds a Lark grammar for
# the "iri" formats at import time: a second of start-up for checks the lab never makes. The lab process only.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from llmd_lab.lab.server import main  # noqa: E402

sys.exit(main())
