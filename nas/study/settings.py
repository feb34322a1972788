"""What a search is asked to do, where its study lives and what it was created with, with the
search's defaults. Free of Optuna, so the command line can show them without loading it;
`nas.study.optimize` opens and runs studies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nas.core.urls import mask_passwords
from nas.data.dataset import OFFICIAL
from nas.device.memory import KB, MEMORY_MODEL_VERSION, Budget
from nas.device.targets import DEFAULT_TARGET
from nas.study.confirm import ConfirmSettings
from nas.study.space import SearchSpace

DEFAULT_RESULTS = Path("results")
SAMPLERS = ("tpe", "nsga2", "gp", "random")
SEARCH_WEIGHTS = ("pow2", "fixed", "float", "any")  # --weights of nas search: one scheme, or all
DEFAULT_WEIGHTS = "pow2"
# 40: the GRU kernel and the rungs make a trial cheaper, so the default search affords 10 more
# trials than before issue 13 and still ends in about 7 minutes on 2 cores (docs/search.md, measured)
DEFAULT_TRIALS = 40
DEFAULT_WORKERS = 2
DEFAULT_SEED = 0
DEFAULT_SAMPLER = "tpe"
# A worker writes a heartbeat for its running trial this often; a trial whose heartbeat is older
# than GRACE_HEARTBEATS beats belongs to a dead worker: it is failed and queued again (at most
# MAX_RETRIES times, so a configuration that kills its worker cannot loop forever).
DEFAULT_HEARTBEAT_S = 10
GRACE_HEARTBEATS = 3
MAX_RETRIES = 2


def default_study_name(weights: str, budget_kb: float, quick: bool = False) -> str:
    return f"{weights}-{budget_kb:g}kb" + ("-quick" if quick else "")  # a quick study is another study


DEFAULT_STUDY = default_study_name(DEFAULT_WEIGHTS, 36)  # the README's main job: nas search --budget-kb 36 --weights pow2


@dataclass(frozen=True)
class StudyLocation:
    """A study's folder under the results folder, and its Optuna storage."""

    name: str = DEFAULT_STUDY
    storage: str | None = None  # any Optuna storage URL; default: SQLite in the study folder
    results_dir: Path = DEFAULT_RESULTS

    @property
    def study_dir(self) -> Path:
        return self.results_dir / self.name

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.study_dir / 'study.db').resolve()}"

    @property
    def display_url(self) -> str:
        """The storage URL to print, log or write to a report: its password masked."""
        return mask_passwords(self.storage_url)


@dataclass(frozen=True)
class StudySettings:
    """What a study was created with. A resume must agree; --trials, --workers and --timeout may change."""

    budget_bytes: int
    budget_scope: str
    weights: str
    split: str
    seed: int
    sampler: str
    space: dict  # SearchSpace.values(): the space's content, not its file name
    flash_bytes: int | None = None  # --flash-kb
    ram_bytes: int | None = None  # --ram-kb
    # the memory model's version: a study sized by an older model (weights and state only, before
    # the front-end and the stream struct were counted) must not be resumed with this one
    memory_model: int = 1  # a stored study without the key was sized by version 1
    speaker_folds: int = 0  # --speaker-folds: trials selected on new voices (0 in studies before it)
    quick: bool = False  # --quick: trials trained as nas.study.space.QUICK_TRAINING says, front not confirmed
    mcu_mhz: float | None = None  # --mcu-mhz: every frame in real time at this clock (None in studies before it)
    target: str = DEFAULT_TARGET  # --target: the core the compute model predicts

    @property
    def budget(self) -> Budget:
        return Budget(self.budget_bytes, self.budget_scope, self.flash_bytes, self.ram_bytes, self.mcu_mhz, self.target)

    def differences(self, other: StudySettings) -> list[str]:
        """Every setting in which `other` differs from this one: the option and both values."""
        found = []
        if other.budget_bytes != self.budget_bytes:
            stored, asked = (f"{b / KB:g} ({b:,} B)" for b in (self.budget_bytes, other.budget_bytes))
            found.append(f"--budget-kb {stored}, not {asked}")
        if other.memory_model != self.memory_model:
            found.append(f"memory model version {self.memory_model}, not {other.memory_model} (start a new --study)")
        if other.quick != self.quick:
            kinds = ("a --quick study", "a full study (without --quick)")
            stored, asked = kinds if self.quick else kinds[::-1]
            found.append(f"{stored}, not {asked}")
        for option, name in STORED_OPTIONS:
            if getattr(other, name) != getattr(self, name):
                found.append(f"{option} {getattr(self, name)}, not {getattr(other, name)}")
        for key in self.space:
            if key not in other.space:  # a key of an older nas (a study stores its space's values)
                found.append(f"a --space with {key} = {self.space[key]}, a key this version no longer has (start a new --study)")
            elif other.space[key] != self.space[key]:
                found.append(f"a --space with {key} = {self.space[key]}, not {other.space[key]}")
        return found

    def difference(self, other: StudySettings) -> str | None:
        """The first of `differences`, or None."""
        return next(iter(self.differences(other)), None)


# (option, StudySettings field) of the settings a resume may leave out or must repeat unchanged
STORED_OPTIONS = (
    ("--budget-scope", "budget_scope"),
    ("--flash-kb", "flash_bytes"),
    ("--ram-kb", "ram_bytes"),
    ("--weights", "weights"),
    ("--split", "split"),
    ("--speaker-folds", "speaker_folds"),
    ("--seed", "seed"),
    ("--sampler", "sampler"),
    ("--mcu-mhz", "mcu_mhz"),
    ("--target", "target"),
)


@dataclass(frozen=True)
class SearchOptions:
    budget: Budget
    space: SearchSpace
    weights: str = DEFAULT_WEIGHTS  # one of SEARCH_WEIGHTS; narrows the space
    location: StudyLocation = field(default_factory=StudyLocation)
    trials: int = DEFAULT_TRIALS
    timeout_s: float | None = None
    seed: int = DEFAULT_SEED
    sampler: str = DEFAULT_SAMPLER
    workers: int = DEFAULT_WORKERS
    split: str = OFFICIAL
    # each trial also trains on this many leave-one-speaker-out folds and is selected on their
    # validation speakers (nas.data.dataset.fold_speakers); 0: on the split's validation part
    speaker_folds: int = 0
    heartbeat_s: int = DEFAULT_HEARTBEAT_S  # not a search setting: hosts of one study may differ
    artifacts: str | None = None  # the artifact store (nas.study.artifacts): set at creation, or this host's path to it
    quick: bool = False  # a first look: trials train as `training_space` says, and nothing is confirmed
    confirm: ConfirmSettings = field(default_factory=ConfirmSettings)  # not a study setting: more seeds only add runs

    @property
    def training_space(self) -> SearchSpace:
        """The space as its trials train: with --quick, shorter (nas.study.space.QUICK_TRAINING). The
        study stores `space`, whose [training] stays the top fidelity that confirmation trains at."""
        return self.space.quick() if self.quick else self.space

    @property
    def confirms(self) -> bool:
        return self.confirm.enabled and not self.quick

    @property
    def grace_s(self) -> int:
        return GRACE_HEARTBEATS * self.heartbeat_s

    @property
    def searched_space(self) -> SearchSpace:
        return self.space.restricted_to(self.weights)

    def settings(self) -> StudySettings:
        return StudySettings(
            self.budget.limit_bytes,
            self.budget.scope,
            self.weights,
            self.split,
            self.seed,
            self.sampler,
            self.space.values(),
            self.budget.flash_bytes,
            self.budget.ram_bytes,
            MEMORY_MODEL_VERSION,
            self.speaker_folds,
            self.quick,
            self.budget.mcu_mhz,
            self.budget.target,
        )
