"""Search spaces: TOML files that say what `nas search` may sample.

The default space is `nas/spaces/default.toml`, shipped inside the package (so an installed
`nas` finds it) and linked from the project's `search_spaces/`. It is the one definition of the
default: it must set every key, and another space file only overrides the keys it sets. A file
has three tables; unknown keys, wrong types and values outside the limits of `nas.core.limits` are
errors naming the file and the key:

    [architecture]
    cells = ["gru", "lstm"]           # any of gru, lstm, rnn
    layers = [1, 2]
    hidden = { min = 16, max = 256 }  # sampled within what fits the budget
    n_mfcc = [13, 16]

    [features]                        # the integer front-end's shape: it costs bytes too
    n_mels = [20, 40]
    n_fft = [128, 256]                # a power of two
    hop_length = [80]

    [formats]
    weights = ["pow2", "fixed"]       # --weights narrows this (or opens it with 'any')
    pow2_bits = [3, 4, 5]
    fixed_bits = [4, 6, 8]
    state_bits = [16]

    [training]
    epochs = 40
    patience = 15
    rungs = [5, 10, 20]               # epochs at which a beaten trial stops (nas.study.rungs); [] for none
    rung_margins = [8.0, 3.0, 1.0]    # percentage points, one per rung
    learning_rate = { min = 0.002, max = 0.006, log = true }
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path

from nas.core import limits
from nas.core.errors import NasError
from nas.features.extract import FeatureConfig
from nas.model.architecture import CELLS
from nas.model.formats import WEIGHT_SCHEMES
from nas.study.rungs import RungRule

SPACES_DIR = Path(str(files("nas") / "spaces"))
DEFAULT_SPACE = SPACES_DIR / "default.toml"


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class SearchSpace:
    cells: tuple[str, ...]
    layers: tuple[int, ...]
    hidden_min: int
    hidden_max: int
    n_mfcc: tuple[int, ...]
    n_mels: tuple[int, ...]
    n_fft: tuple[int, ...]
    hop_length: tuple[int, ...]
    weights: tuple[str, ...]
    pow2_bits: tuple[int, ...]
    fixed_bits: tuple[int, ...]
    state_bits: tuple[int, ...]
    epochs: int
    patience: int
    wave_copies: int  # augmented copies of each training recording (TrainConfig.wave_copies)
    rungs: tuple[int, ...]  # epochs at which a trial beaten by a no-larger one stops (nas.study.rungs)
    rung_margins: tuple[float, ...]  # per rung: percentage points by which the no-larger trial must lead
    learning_rate: FloatRange
    source: str  # the file(s) it was read from

    def bits_for(self, scheme: str) -> tuple[int, ...]:
        return {"pow2": self.pow2_bits, "fixed": self.fixed_bits, "float": (limits.FLOAT_BITS,)}[scheme]

    def feature_config(self, n_mfcc: int, n_mels: int, n_fft: int, hop_length: int) -> FeatureConfig:
        """The features of one sampled trial: the integer front-end in this shape, the rest default."""
        return FeatureConfig(n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, frontend="integer")

    def restricted_to(self, weights: str) -> SearchSpace:
        """--weights pow2|fixed|float picks one scheme; 'any' opens all three."""
        return replace(self, weights=WEIGHT_SCHEMES if weights == "any" else (weights,))

    def quick(self) -> SearchSpace:
        """`nas search --quick`: the space's trials trained as before the full recipe (issue 21), a
        first look in minutes; the front is then not confirmed."""
        return replace(self, **QUICK_TRAINING)

    def rung_rule(self) -> RungRule:
        """The early-stopping rule of the search's trials: the rungs before the last epoch."""
        kept = [(epoch, margin) for epoch, margin in zip(self.rungs, self.rung_margins, strict=True) if epoch < self.epochs]
        return RungRule(tuple(e for e, _ in kept), tuple(m / 100 for _, m in kept))

    def values(self) -> dict[str, object]:
        """The space as '<table>.<key>' -> value, in the file's terms (what a study stores)."""
        out: dict[str, object] = {}
        for name, (kind, fields) in _SCHEMA.items():
            if kind == "int_range":
                out[name] = {"min": self.hidden_min, "max": self.hidden_max}
            elif kind == "float_range":
                rate = self.learning_rate
                out[name] = {"min": rate.low, "max": rate.high, "log": rate.log}
            else:
                value = getattr(self, fields[0])
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


# `nas search --quick` trains each trial this way instead of the space's [training] epochs,
# patience and copies (the default search's settings before the full recipe became its top fidelity)
QUICK_TRAINING = {"epochs": 40, "patience": 15, "wave_copies": 4}

# '<table>.<key>' -> (kind, the SearchSpace fields it sets)
_SCHEMA: dict[str, tuple[str, tuple[str, ...]]] = {
    "architecture.cells": ("choices", ("cells",)),
    "architecture.layers": ("choices", ("layers",)),
    "architecture.hidden": ("int_range", ("hidden_min", "hidden_max")),
    "architecture.n_mfcc": ("choices", ("n_mfcc",)),
    "features.n_mels": ("choices", ("n_mels",)),
    "features.n_fft": ("choices", ("n_fft",)),
    "features.hop_length": ("choices", ("hop_length",)),
    "formats.weights": ("choices", ("weights",)),
    "formats.pow2_bits": ("choices", ("pow2_bits",)),
    "formats.fixed_bits": ("choices", ("fixed_bits",)),
    "formats.state_bits": ("choices", ("state_bits",)),
    "training.epochs": ("int", ("epochs",)),
    "training.patience": ("int", ("patience",)),
    "training.wave_copies": ("int", ("wave_copies",)),
    "training.rungs": ("epochs", ("rungs",)),
    "training.rung_margins": ("numbers", ("rung_margins",)),
    "training.learning_rate": ("float_range", ("learning_rate",)),
}
_TABLES = tuple(dict.fromkeys(name.split(".")[0] for name in _SCHEMA))


def _bound_values(bound: limits.Bound, high: float | None = None) -> tuple[int, ...]:
    return tuple(range(int(bound.low), int(bound.high if high is None else high) + 1))


# What each key may hold: from the limits and the configs, never written out here.
_ALLOWED: dict[str, tuple] = {
    "architecture.cells": CELLS,
    "architecture.layers": _bound_values(limits.LAYERS),
    "architecture.n_mfcc": _bound_values(limits.N_MFCC),
    "features.n_mels": _bound_values(limits.N_MELS),
    "features.n_fft": tuple(n for n in _bound_values(limits.N_FFT) if n & (n - 1) == 0),  # the integer FFT's sizes
    "features.hop_length": _bound_values(limits.HOP_LENGTH),
    "formats.weights": WEIGHT_SCHEMES,
    "formats.pow2_bits": _bound_values(limits.POW2_BITS),
    "formats.fixed_bits": _bound_values(limits.FIXED_BITS),
    "formats.state_bits": limits.STATE_BITS,
}
_INT_BOUNDS = {
    "training.epochs": limits.EPOCHS,
    "training.patience": limits.PATIENCE,
    "training.wave_copies": limits.WAVE_COPIES,
    "architecture.hidden": limits.HIDDEN,
}


def resolve_space_path(text: str | None) -> Path:
    """--space: a TOML file, or the name of a space shipped with nas (e.g. 'tiny')."""
    if text is None:
        return DEFAULT_SPACE
    path = Path(text)
    if not path.exists() and (SPACES_DIR / f"{text}.toml").is_file():
        return SPACES_DIR / f"{text}.toml"
    return path


def bundled_spaces() -> list[str]:
    return sorted(path.stem for path in SPACES_DIR.glob("*.toml"))


def load_space(path: Path | None = None) -> SearchSpace:
    """The default space, with the keys that `path` sets replaced."""
    values = _read(DEFAULT_SPACE)
    missing = [name for name in _SCHEMA if not set(_SCHEMA[name][1]) <= set(values)]
    if missing:
        raise NasError(f"{DEFAULT_SPACE}: the default space must set every key; missing {', '.join(missing)}")
    source = str(DEFAULT_SPACE)
    if path is not None and Path(path).resolve() != DEFAULT_SPACE.resolve():
        values |= _read(Path(path))
        source = str(path)
    space = SearchSpace(**values, source=source)
    if max(space.n_mfcc) > min(space.n_mels):
        raise NasError(f"{source}: n_mfcc {max(space.n_mfcc)} > n_mels {min(space.n_mels)}; expected every n_mfcc <= every n_mels")
    if len(space.rung_margins) != len(space.rungs):
        raise NasError(
            f"{source}: training.rung_margins has {len(space.rung_margins)} value(s), training.rungs {len(space.rungs)}; "
            "expected one margin per rung"
        )
    if max(space.hop_length) > min(space.n_fft):
        raise NasError(f"{source}: hop_length {max(space.hop_length)} > n_fft {min(space.n_fft)}; expected every hop <= every n_fft")
    return space


def space_from_values(values: dict, source: str) -> SearchSpace:
    """The space a study stored (`SearchSpace.values`), checked as a file's would be; `source`
    names where it came from in messages."""
    missing = [name for name in _SCHEMA if name not in values]
    if missing:
        raise NasError(f"{source}: the space lacks {', '.join(missing)}; expected every key of {DEFAULT_SPACE}")
    fields: dict = {}
    for name in _SCHEMA:
        fields |= _parse(Path(source), name, values[name])
    return SearchSpace(**fields, source=source)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise NasError(
            f"{path}: search space file not found; expected a TOML file or one of the bundled spaces ({', '.join(bundled_spaces())})"
        )
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise NasError(f"{path}: not valid TOML ({error})") from None
    values: dict = {}
    for table, content in document.items():
        if table not in _TABLES:
            raise NasError(f"{path}: unknown table [{table}]; expected {', '.join(f'[{t}]' for t in _TABLES)}")
        if not isinstance(content, dict):
            raise NasError(f"{path}: '{table}' must be a table")
        for key, value in content.items():
            name = f"{table}.{key}"
            if name not in _SCHEMA:
                keys = [n.split(".")[1] for n in _SCHEMA if n.startswith(table + ".")]
                raise NasError(f"{path}: unknown key '{name}'; expected one of {', '.join(keys)}")
            values.update(_parse(path, name, value))
    return values


def _parse(path: Path, name: str, value) -> dict:
    kind, fields = _SCHEMA[name]

    def fail(expected: str):
        raise NasError(f"{path}: key '{name}' = {value!r}; expected {expected}")

    def is_int(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if kind == "choices":
        if not isinstance(value, list) or not value:
            fail("a non-empty list")
        allowed = _ALLOWED[name]
        if any(isinstance(v, bool) or v not in allowed for v in value):
            fail(f"values from {list(allowed) if len(allowed) < 12 else f'{min(allowed)}..{max(allowed)}'}")
        return {fields[0]: tuple(dict.fromkeys(value))}
    if kind == "int":
        bound = _INT_BOUNDS[name]
        if not is_int(value) or not bound.contains(value):
            fail(bound.expected())
        return {fields[0]: value}
    if kind == "epochs":  # increasing epochs, possibly none
        if not isinstance(value, list) or any(not is_int(v) or not limits.EPOCHS.contains(v) for v in value):
            fail(f"a list of epochs, each {limits.EPOCHS.expected()} (may be empty)")
        if any(a >= b for a, b in itertools.pairwise(value)):
            fail("epochs in increasing order")
        return {fields[0]: tuple(value)}
    if kind == "numbers":  # rung margins, possibly none
        bound = limits.RUNG_MARGIN
        if not isinstance(value, list) or any(isinstance(v, bool) or not bound.contains(v) for v in value):
            fail(f"a list of numbers, each {bound.expected()} (may be empty)")
        return {fields[0]: tuple(float(v) for v in value)}
    if not isinstance(value, dict) or set(value) - {"min", "max", "log"} or not {"min", "max"} <= set(value):
        fail("a table { min = ..., max = ... }")
    low, high = value["min"], value["max"]
    if kind == "int_range":
        bound = _INT_BOUNDS[name]
        if not (is_int(low) and is_int(high) and bound.contains(low) and bound.contains(high) and low <= high):
            fail(f"integers with {bound.low} <= min <= max <= {bound.high}")
        return {"hidden_min": low, "hidden_max": high}
    bound = limits.LEARNING_RATE
    if not (bound.contains(low) and bound.contains(high) and low <= high):
        fail(f"numbers with {bound.low} <= min <= max <= {bound.high}")
    return {fields[0]: FloatRange(float(low), float(high), bool(value.get("log", False)))}
