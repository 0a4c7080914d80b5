"""A circuit breaker per deployment (provider + upstream model), per process.

Closed: calls go through; GATEWAY_BREAKER_FAILURES consecutive failures (a connection
that could not be opened or broke, a time-out, a 429 or 5xx, a stream that broke) open
it. Open: the deployment rests for GATEWAY_BREAKER_REST_SECONDS and is skipped. Then
half-open: one trial call is let through; its success closes the breaker, its failure
opens it for another rest. A trial that ends with neither (the caller left) frees the
slot; one that never reports at all is given up after a rest period.

Pure logic over an injectable clock; the gateway's single event loop is the only
writer, so there is no locking. Transitions are logged with the deployment's provider
name and upstream model, never its address or key.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _State:
    failures: int = 0  # consecutive
    resting_until: float | None = None  # open until then; half-open after, until closed
    trial_since: float | None = None  # half-open: when the one trial call was let through


class Breakers:
    """`failures` / `rest_seconds` fixed for tests; by default read from the settings at
    each use, so an operator's (or a test's) change applies at once."""

    def __init__(
        self,
        *,
        failures: int | None = None,
        rest_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures = failures
        self._rest = rest_seconds
        self._clock = clock
        self._states: dict[str, _State] = {}

    @property
    def threshold(self) -> int:
        return self._failures if self._failures is not None else settings.GATEWAY_BREAKER_FAILURES

    @property
    def rest_seconds(self) -> float:
        return self._rest if self._rest is not None else settings.GATEWAY_BREAKER_REST_SECONDS

    def wait(self, key: str) -> float:
        """Seconds until `key` may be tried; 0 when it may be tried now."""
        state = self._states.get(key)
        if state is None or state.resting_until is None:
            return 0.0
        now = self._clock()
        if now < state.resting_until:
            return state.resting_until - now
        if state.trial_since is not None:
            trial_ends = state.trial_since + self.rest_seconds
            if now < trial_ends:
                return trial_ends - now  # another call is trying it right now
        return 0.0

    def acquire(self, key: str) -> bool:
        """May this call try `key` now? In half-open state, takes the one trial."""
        if self.wait(key) > 0:
            return False
        state = self._states.get(key)
        if state is not None and state.resting_until is not None:
            state.trial_since = self._clock()
            logger.info("deployment %s: half-open, one trial call let through", key)
        return True

    def release(self, key: str) -> None:
        """The call that held the trial ended without telling (it was cancelled)."""
        state = self._states.get(key)
        if state is not None:
            state.trial_since = None

    def success(self, key: str) -> None:
        state = self._states.get(key)
        if state is None:
            return
        if state.resting_until is not None:
            logger.warning("deployment %s: recovered, circuit closed", key)
        del self._states[key]

    def failure(self, key: str) -> None:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        state.failures += 1
        now = self._clock()
        if state.resting_until is not None:
            if now >= state.resting_until:  # half-open: the trial (or a late call) failed
                state.resting_until = now + self.rest_seconds
                state.trial_since = None
                logger.warning(
                    "deployment %s: failed again, circuit re-opened for %gs", key, self.rest_seconds
                )
            return
        if state.failures >= self.threshold:
            state.resting_until = now + self.rest_seconds
            state.trial_since = None
            logger.warning(
                "deployment %s: circuit opened after %d consecutive failures, resting %gs",
                key,
                state.failures,
                self.rest_seconds,
            )

    def retry_after(self, keys: Iterable[str]) -> int:
        """Whole seconds (at least 1) until the first of `keys` may be tried."""
        return max(1, math.ceil(min((self.wait(key) for key in keys), default=1.0)))

    def reset(self) -> None:
        self._states.clear()


breakers = Breakers()
