"""Search spaces: TOML files in search_spaces/ that say what `nas search` may sample.

A file has three tables; every key is optional (the default space's value is used) and
unknown keys, wrong types and empty ranges are errors naming the file and the key:

    [architecture]
    cells = ["gru", "lstm"]           # any of gru, lstm, rnn
    layers = [1, 2]                   # 1..3
    hidden = { min = 16, max = 256 }  # sampled within what fits the budget
    n_mfcc = [13, 16]

    [formats]
    weights = ["pow2", "fixed"]       # --weights narrows this (or opens it with 'any')
    pow2_bits = [3, 4, 5]
    fixed_bits = [4, 6, 8]
    state_bits = [16]

    [training]
    epochs = 40
    patience = 15
    learning_rate = { min = 0.002, max = 0.006, log = true }
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from nas.architecture import CELLS, MAX_HIDDEN, MAX_LAYERS
from nas.errors import NasError
from nas.formats import FIXED_BITS, POW2_BITS, STATE_BITS, WEIGHT_SCHEMES

SPACES_DIR = Path(__file__).resolve().parent.parent / "search_spaces"
DEFAULT_SPACE = SPACES_DIR / "default.toml"


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class SearchSpace:
    cells: tuple[str, ...] = ("gru", "lstm")
    layers: tuple[int, ...] = (1, 2)
    hidden_min: int = 16
    hidden_max: int = 256
    n_mfcc: tuple[int, ...] = (13, 16)
    weights: tuple[str, ...] = ("pow2", "fixed")
    pow2_bits: tuple[int, ...] = (3, 4, 5)
    fixed_bits: tuple[int, ...] = (4, 6, 8)
    state_bits: tuple[int, ...] = (16,)
    epochs: int = 40
    patience: int = 15
    learning_rate: FloatRange = field(default_factory=lambda: FloatRange(0.002, 0.006, log=True))
    source: str = "built-in defaults"

    def bits_for(self, scheme: str) -> tuple[int, ...]:
        return {"pow2": self.pow2_bits, "fixed": self.fixed_bits, "float": (32,)}[scheme]

    def restricted_to(self, weights: str) -> SearchSpace:
        """--weights pow2|fixed|float picks one scheme; 'any' opens all three."""
        from dataclasses import replace

        schemes = WEIGHT_SCHEMES if weights == "any" else (weights,)
        return replace(self, weights=tuple(schemes))


_SCHEMA: dict[str, dict[str, str]] = {
    "architecture": {"cells": "choices", "layers": "choices", "hidden": "int_range", "n_mfcc": "choices"},
    "formats": {"weights": "choices", "pow2_bits": "choices", "fixed_bits": "choices", "state_bits": "choices"},
    "training": {"epochs": "int", "patience": "int", "learning_rate": "float_range"},
}
_ALLOWED = {
    "cells": set(CELLS),
    "layers": set(range(1, MAX_LAYERS + 1)),
    "n_mfcc": set(range(1, 41)),
    "weights": set(WEIGHT_SCHEMES),
    "pow2_bits": set(range(POW2_BITS[0], POW2_BITS[1] + 1)),
    "fixed_bits": set(range(FIXED_BITS[0], FIXED_BITS[1] + 1)),
    "state_bits": set(STATE_BITS),
}


def load_space(path: Path | None = None) -> SearchSpace:
    path = Path(path) if path is not None else DEFAULT_SPACE
    if not path.is_file():
        raise NasError(f"{path}: search space file not found; expected a TOML file (see search_spaces/default.toml)")
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise NasError(f"{path}: not valid TOML ({error})") from None
    values: dict = {"source": str(path)}
    for table, content in document.items():
        if table not in _SCHEMA:
            raise NasError(f"{path}: unknown table [{table}]; expected {', '.join(f'[{t}]' for t in _SCHEMA)}")
        if not isinstance(content, dict):
            raise NasError(f"{path}: '{table}' must be a table")
        for key, value in content.items():
            kind = _SCHEMA[table].get(key)
            if kind is None:
                raise NasError(f"{path}: unknown key '{table}.{key}'; expected one of {', '.join(_SCHEMA[table])}")
            values.update(_parse(path, f"{table}.{key}", key, kind, value))
    space = SearchSpace(**values)
    return space


def _parse(path: Path, name: str, key: str, kind: str, value) -> dict:
    def fail(expected: str):
        raise NasError(f"{path}: key '{name}' = {value!r}; expected {expected}")

    if kind == "choices":
        if not isinstance(value, list) or not value:
            fail("a non-empty list")
        allowed = _ALLOWED[key]
        wrong = [v for v in value if isinstance(v, bool) or v not in allowed]
        if wrong:
            fail(f"values from {sorted(allowed) if len(allowed) < 12 else f'{min(allowed)}..{max(allowed)}'}")
        return {key: tuple(dict.fromkeys(value))}
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail("a positive integer")
        return {key: value}
    if not isinstance(value, dict) or set(value) - {"min", "max", "log"} or not {"min", "max"} <= set(value):
        fail("a table { min = ..., max = ... }")
    low, high = value["min"], value["max"]
    if kind == "int_range":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or not 1 <= low <= high <= MAX_HIDDEN:
            fail(f"integers with 1 <= min <= max <= {MAX_HIDDEN}")
        return {"hidden_min": low, "hidden_max": high}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or not 0 < low <= high <= 1:
        fail("numbers with 0 < min <= max <= 1")
    return {key: FloatRange(float(low), float(high), bool(value.get("log", False)))}
