"""Text of generated C: the one way arrays are written (model, front-end, golden vectors)."""

from __future__ import annotations

import numpy as np


def c_array(values, per_line: int = 16) -> str:
    """The body of a C array initialiser: integers (numpy values or the bytes of a `bytes`), 16 a line."""
    items = [str(int(v)) for v in (list(values) if isinstance(values, bytes) else np.asarray(values).reshape(-1))]
    return ",\n".join("    " + ", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line))
