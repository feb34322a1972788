"""What one `nas search` run asks for, resolved against what its study already stores: a resume
needs only `--study NAME`, and a setting it names must agree with the stored one (the study
refuses a difference, listing every one, in `nas.study.optimize.open_study`)."""

from __future__ import annotations

from dataclasses import dataclass

from nas.core.errors import NasError
from nas.data.dataset import OFFICIAL
from nas.device.memory import DEFAULT_BUDGET_SCOPE, Budget, budget_bytes_from_kb
from nas.study.settings import DEFAULT_SAMPLER, DEFAULT_SEED, DEFAULT_WEIGHTS, StudySettings, default_study_name
from nas.study.space import SearchSpace, load_space, resolve_space_path, space_from_values


@dataclass(frozen=True)
class SearchRequest:
    """The study settings a run names. None: not named, so a resume takes the study's stored value
    and a new study the default."""

    budget_kb: float | None = None
    budget_scope: str | None = None
    flash_kb: float | None = None
    ram_kb: float | None = None
    mcu_mhz: float | None = None
    target: str | None = None
    weights: str | None = None
    space: str | None = None  # a TOML file, or a bundled space's name
    split: str | None = None
    speaker_folds: int | None = None
    seed: int | None = None
    sampler: str | None = None
    quick: bool | None = None

    def study_name(self) -> str:
        """The default study name, <weights>-<budget>kb[-quick]: it needs the budget."""
        if self.budget_kb is None:
            raise NasError("--budget-kb: missing; expected a budget for a new search, or --study NAME to resume a study")
        return default_study_name(self.weights or DEFAULT_WEIGHTS, self.budget_kb, bool(self.quick))

    def resolve(self, stored: StudySettings | None, study_name: str) -> dict:
        """SearchOptions' study settings (budget, space, weights, split, speaker_folds, seed,
        sampler, quick): each named one, else the stored one, else the default."""
        if stored is None:
            if self.budget_kb is None:
                raise NasError(f"--budget-kb: missing; study '{study_name}' does not exist yet, and a new search needs a budget")
            stored = _defaults(self)
        return {
            "budget": self._budget(stored),
            "space": self._space(stored, study_name),
            "weights": _named(self.weights, stored.weights),
            "split": _named(self.split, stored.split),
            "speaker_folds": _named(self.speaker_folds, stored.speaker_folds),
            "seed": _named(self.seed, stored.seed),
            "sampler": _named(self.sampler, stored.sampler),
            "quick": _named(self.quick, stored.quick),
        }

    def _budget(self, stored: StudySettings) -> Budget:
        def limit(kb: float | None, stored_bytes: int | None) -> int | None:
            return stored_bytes if kb is None else budget_bytes_from_kb(kb)

        return Budget(
            limit(self.budget_kb, stored.budget_bytes),  # type: ignore[arg-type]  # a stored budget is never None
            _named(self.budget_scope, stored.budget_scope),
            limit(self.flash_kb, stored.flash_bytes),
            limit(self.ram_kb, stored.ram_bytes),
            _named(self.mcu_mhz, stored.mcu_mhz),
            _named(self.target, stored.target),
        )

    def _space(self, stored: StudySettings, study_name: str) -> SearchSpace:
        if self.space is not None or not stored.space:
            return load_space(resolve_space_path(self.space))
        # a key added since the study was created takes the default space's value, as a resume
        # with the default space did before a resume read the stored space
        return space_from_values(load_space().values() | stored.space, f"study '{study_name}'")


def _named(value, stored):
    return stored if value is None else value


def _defaults(request: SearchRequest) -> StudySettings:
    """A new study's settings where the request names none (its space is read from the file)."""
    return StudySettings(
        budget_bytes=budget_bytes_from_kb(request.budget_kb),  # type: ignore[arg-type]  # checked by the caller
        budget_scope=DEFAULT_BUDGET_SCOPE,
        weights=DEFAULT_WEIGHTS,
        split=OFFICIAL,
        seed=DEFAULT_SEED,
        sampler=DEFAULT_SAMPLER,
        space={},
    )
