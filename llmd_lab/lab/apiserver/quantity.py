"""Resource quantities as apimachinery's ``resource.Quantity`` decodes them (pkg/api/resource/quantity.go)."""

from __future__ import annotations

import re
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

FORMAT = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_ERROR = f"quantities must match the regular expression '{FORMAT}'"  # resource.ErrFormatWrong
_FORMAT = re.compile(FORMAT)


def well_formed(value: object) -> bool:
    """What ``Quantity.UnmarshalJSON`` accepts: a number, or a string in the quantity syntax."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str) or not _FORMAT.match(value.strip()):
        return False
    try:
        parse_quantity(value.strip())
    except ValueError:
        return False
    return True


def parse(value: object) -> Decimal:
    """The value of a well-formed quantity (0 for anything else: decoding refused it already)."""
    if not well_formed(value):
        return Decimal(0)
    return parse_quantity(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
