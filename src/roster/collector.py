"""The cyclic garbage collector, paused while bulk work runs: imports and long PATCHes allocate
many objects that form no cycles, and the collector's passes over them cost time; during a long
PATCH on a worker thread they also kept the event loop from its turns. Pauses may overlap (two
imports, an import and a PATCH): the collector runs again when the last one ends."""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
