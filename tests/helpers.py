"""Helpers shared by tests: waiting on conditions and reading population content."""

import time
from collections.abc import Callable

import psycopg


def wait_until(condition: Callable[[], bool], *, timeout: float = 60, message: str = "") -> None:
    """Poll `condition` every 50 ms until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or condition}")
        time.sleep(0.05)


def population_digest(dsn: str) -> tuple[int, int, str, str]:
    """Return (customers, pets, md5 of all customer rows, md5 of all pet rows) in id order."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM customers),
                   (SELECT count(*) FROM pets),
                   (SELECT md5(string_agg(c::text, '|' ORDER BY customer_id)) FROM customers c),
                   (SELECT md5(string_agg(p::text, '|' ORDER BY pet_id)) FROM pets p)
            """
        ).fetchone()
    assert row is not None
    return row
