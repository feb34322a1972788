"""The benchmark scripts are not run by the tests (they take minutes to hours), but they must
keep importing what they use from the package."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("script", sorted((REPO / "bench").glob("*.py")), ids=lambda p: p.name)
def test_bench_script_imports(script):
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `python bench/x.py` has it: a dataclass looks its module up there
    try:
        spec.loader.exec_module(module)  # runs the imports and definitions, not main()
    finally:
        del sys.modules[spec.name]
    assert callable(getattr(module, "main", None))


def test_searches_report_pairs_runs_by_seed():
    """The done-when comparisons of bench/searches.py: differences of the same seed, not of means
    over whatever seeds each side happens to have."""
    spec = importlib.util.spec_from_file_location("bench_searches", REPO / "bench" / "searches.py")
    searches = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(searches)
    label = list(searches.LABELS)[-1]
    old = f"old-{searches.OLD_REF}"
    runs = [dict(label=old, sampler="tpe", trials=30, seed=seed, val_hypervolume=0.80 + seed / 100) for seed in range(4)]
    # the new default ran seeds 1-3 only, 0.01 above the old at each; seed 0 has no partner
    runs += [dict(label=label, sampler="tpe", trials=40, seed=seed, val_hypervolume=0.81 + seed / 100,
                  val_hypervolume_first_30=0.80 + seed / 100) for seed in range(1, 4)]  # fmt: skip
    runs += [dict(label=label, sampler="random", trials=60, seed=seed, val_hypervolume=0.79 + seed / 100) for seed in (1, 2)]
    lines = searches.paired_lines(runs)
    against_old = next(line for line in lines if line.startswith(f"| {label} tpe against {old}"))
    assert "| 1, 2, 3 | +0.0100, +0.0100, +0.0100 | +0.0100 [+0.0100, +0.0100] |" in against_old
    against_random = next(line for line in lines if "first 30 trials, against" in line and line.startswith(f"| {label}"))
    assert "| 1, 2 | +0.0100, +0.0100 |" in against_random
