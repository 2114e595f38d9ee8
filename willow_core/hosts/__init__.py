"""Hosts that run generator workers: this machine, or a remote host over SSH."""

from willow_core.hosts.base import GeneratorHost, LaunchedWorker

__all__ = ["GeneratorHost", "LaunchedWorker"]
