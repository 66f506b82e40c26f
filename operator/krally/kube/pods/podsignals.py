"""Signal handling of the runner and hook pods' main functions."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def handling(handler: Callable[[int, Any], None], *signums: signal.Signals) -> Iterator[None]:
    """Install ``handler`` for ``signums`` while the block runs, then restore the previous ones
    (the functions also run inside tests, whose process must not keep a pod's handlers).
    Off the main thread Python cannot install handlers, so nothing is changed there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
