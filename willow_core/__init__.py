"""Headless core of Willow: configuration, population generation, storage and hosts.

Nothing in this package imports Textual, so it runs on a generator host that has no UI installed.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("willow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
