"""Stop requests: SIGINT and SIGTERM end long work cleanly, at points the work chooses.

A Python signal handler that raises ``KeyboardInterrupt`` can be lost: when the
signal lands while TensorFlow finalises an object, the exception is raised in
``__del__`` and printed as "Exception ignored in ...", and the search runs on.
So inside :func:`stop_on_signals` a signal only records itself, and long work
calls :func:`check` where stopping is safe (between and inside candidates, in
an executor's wait), which raises :class:`Interrupted`. The flag cannot be
swallowed: every later check sees it. A second signal stops at once, for work
that does not check (e.g. a long data load).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: int | None = None  # the first signal received inside stop_on_signals, not yet acted on


class Interrupted(KeyboardInterrupt):
    """A stop request (SIGINT or SIGTERM) acted on; ``exit_code`` is the shell's 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def check() -> None:
    """Raise :class:`Interrupted` if a stop was requested."""
    if _received is not None:
        raise Interrupted(_received)


def requested() -> bool:
    """Whether a stop was requested (and not yet acted on)."""
    return _received is not None


def _handler(signum: int, frame: object) -> None:
    global _received
    if _received is not None:  # the second request: stop now, wherever that is
        raise Interrupted(signum)
    _received = signum
    print(f"\n{signal.Signals(signum).name}: stopping at the next safe point (send it again to stop at once)",
          file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM request a stop that :func:`check` acts on.

    Off the main thread (where Python cannot install handlers) this does
    nothing. A request that no check acted on is raised as the block ends;
    the previous handlers come back on exit.
    """
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in _SIGNALS}
    _received = None
    try:
        yield
        check()  # a request that came after the last check still ends the command as interrupted
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _received = None
