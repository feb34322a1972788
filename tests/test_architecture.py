"""The package stays readable (docs/architecture.md): no module over 400 lines, no function over
100. The layers and the absence of import circles are import-linter's contracts (`make test` runs
`lint-imports`; pyproject.toml holds them)."""

from __future__ import annotations

import ast

from tests.conftest import REPO

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 100


def modules():
    return sorted((REPO / "nas").rglob("*.py"))


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long
    assert len(modules()) > 50  # the walk found the package


def test_no_function_is_over_100_lines():
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.name}"] = lines
    assert not long, long
