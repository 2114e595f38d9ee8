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


CONTROL_ONLY_PACKAGES = ("textual", "neo4j", "asyncssh", "pgserver", "arcadedb_embedded")


def test_cli_runs_without_control_extras() -> None:
    """A generator host installs only the core: `willow` must start without the control extras."""
    script = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        f"        if name.split('.')[0] in {CONTROL_ONLY_PACKAGES!r}:\n"
        "            raise ImportError(f'{name} is not installed')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from willow_core.cli import main\n"
        "sys.exit(main(['generate', '--help']))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--resume" in result.stdout
