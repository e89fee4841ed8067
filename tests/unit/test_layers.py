"""The layers hold: services, ingestion and pure rules do not reach the web framework (read
from the source, so a new import that breaks the layer fails here)."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _services() -> list[Path]:
    return sorted(
        path
        for path in APP.rglob("*.py")
        if path.name in ("service.py", "rules.py", "payments.py", "ingestion.py")
        or path.parent.name in ("ingestion", "rules")
    )


def test_services_and_rules_do_not_import_the_web_framework():
    offenders = {
        str(path.relative_to(APP)): sorted(m for m in _imports(path) if m.startswith("fastapi"))
        for path in _services()
    }
    assert _services(), "no service module found"
    assert {k: v for k, v in offenders.items() if v} == {}
