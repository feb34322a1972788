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
