"""Argument types shared by the `willow` subcommands; each rejects bad input with one line."""

import argparse

from willow_core.config import MAX_WORKERS

MAX_SEED = 2**63 - 1
"""Largest seed a run stores (PostgreSQL bigint)."""


def positive_int(text: str) -> int:
    """Parse a whole number greater than 0."""
    value = _whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def worker_count(text: str) -> int:
    """Parse a number of worker processes: 1 to MAX_WORKERS."""
    value = _whole_number(text)
    if not 0 < value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{value} must be between 1 and {MAX_WORKERS}")
    return value


def non_negative_int(text: str) -> int:
    """Parse a whole number of 0 or more."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def seed(text: str) -> int:
    """Parse a seed: a whole number from 0 to 2^63 - 1."""
    value = _whole_number(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 2^63 - 1")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
