"""Per-user directories for Willow's data, logs and config.

`WILLOW_DATA_DIR` and `WILLOW_CONFIG_DIR` override the platform defaults; tests set them so that a
test run never touches the developer's own data.
"""

import os
from pathlib import Path

import platformdirs

APP_NAME = "willow"


def data_dir() -> Path:
    """Return the directory for the embedded databases and worker logs, creating it if needed."""
    override = os.environ.get("WILLOW_DATA_DIR")
    path = Path(override) if override else platformdirs.user_data_path(APP_NAME)
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Return the per-user config directory (not created)."""
    override = os.environ.get("WILLOW_CONFIG_DIR")
    return Path(override) if override else platformdirs.user_config_path(APP_NAME)


def logs_dir() -> Path:
    """Return the directory for generator worker logs, creating it if needed."""
    path = data_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path
