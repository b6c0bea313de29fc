"""Sign-in throttling (pure: the clock is passed in).

Invariant: after ``limit`` failed sign-ins for one username within ``window``, further attempts
for that username are refused without checking the password until the oldest failure leaves the
window; a success clears the username's failures. Usernames only, never passwords, are held.
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime, timedelta


class SignInThrottle:
    def __init__(self, limit: int = 5, window: timedelta = timedelta(minutes=5)) -> None:
        self.limit = limit
        self.window = window
        self._failures: defaultdict[str, deque[datetime]] = defaultdict(deque)

    def _recent(self, username: str, now: datetime) -> deque[datetime]:
        failures = self._failures[username]
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[username]
            return deque()
        return failures

    def retry_after(self, username: str, now: datetime) -> int | None:
        """Seconds to wait before trying ``username`` again, or None if allowed now."""
        failures = self._recent(username, now)
        if len(failures) < self.limit:
            return None
        return max(int((failures[0] + self.window - now).total_seconds()) + 1, 1)

    def failed(self, username: str, now: datetime) -> None:
        self._failures[username].append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)
