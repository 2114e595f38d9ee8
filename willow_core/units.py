"""Formatting of counts and durations for the CLI and the TUI."""


def format_count(value: int) -> str:
    """Format a count with thousands separators: 1234567 -> "1,234,567"."""
    return f"{value:,}"


def format_duration(seconds: float) -> str:
    """Format a duration compactly: "42 s", "3 min 05 s", "2 h 07 min", "3 d 04 h"."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"
