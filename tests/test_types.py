"""The application type-checks: mypy on app/ with the configuration of pyproject.toml
(unused `type: ignore` comments are errors too)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_clean_on_app():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
