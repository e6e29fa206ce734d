"""The extension's clock: every expiry and throttling window is judged by it.

Python's clock in UTC (never the database's ``now()``), naive and to the second, which
is what every supported database stores. Tests (ours and hosts') move it through
:meth:`Clock.travel` instead of patching anything private.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    """Now, in UTC, naive and to the second."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


class Clock:
    """Now, as the extension sees it: the real time, unless a test stopped it with
    :meth:`freeze` or moved it with :meth:`travel`."""

    def __init__(self) -> None:
        self._frozen: datetime | None = None
        self._offset = timedelta()

    def __call__(self) -> datetime:
        return (self._frozen or utcnow()) + self._offset

    def freeze(self, at: datetime | None = None) -> datetime:
        """Stop the clock at ``at`` (naive UTC) or at its current time; returns it."""
        self._frozen, self._offset = at or self(), timedelta()
        return self._frozen

    def travel(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (or back, when negative)."""
        self._offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        """Back to the real time."""
        self._frozen, self._offset = None, timedelta()
