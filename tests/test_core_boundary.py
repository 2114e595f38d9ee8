"""The core runs on a generator host without the UI: importing it must not load Textual."""

import pkgutil
import subprocess
import sys

import willow_core


def test_core_imports_without_textual() -> None:
    modules = sorted(
        info.name for info in pkgutil.walk_packages(willow_core.__path__, "willow_core.")
    )
    assert "willow_core.population.worker" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
