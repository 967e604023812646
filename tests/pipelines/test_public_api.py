"""The pipelines are written on maestro-lite's public API only: if one needs an internal,
the public API is missing something."""

from __future__ import annotations

import ast
from pathlib import Path

import maestro_lite

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def test_pipelines_import_only_names_that_maestro_lite_exports() -> None:
    offending: list[str] = []
    files = sorted(PIPELINES.glob("*.py"))
    assert files, f"no pipeline modules under {PIPELINES}"
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                offending += [
                    f"{path.name}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("maestro_lite.")
                ]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.startswith("maestro_lite."):
                    offending.append(f"{path.name}: from {node.module} import ...")
                elif node.module == "maestro_lite":
                    offending += [
                        f"{path.name}: {a.name} is not in maestro_lite.__all__"
                        for a in node.names
                        if a.name not in maestro_lite.__all__
                    ]
    assert offending == []
