"""The cyclic garbage collector paused while models load (Interpreter()): a load builds thousands of containers and
no cycle, and the collector's passes over them cost ~9% of a large model's load.  Loads in several threads at
once share one pause: the first to start turns the collector off (if it was on), the last to finish turns it back
on, so no interleaving of loads can leave it off."""
from __future__ import annotations

import gc
import threading

LOCK = threading.Lock()
STATE = [0, False]      # loads in flight, and whether the first of them turned the collector off


class Paused:
    """Context: the collector off while any load is inside one of these (cheaper than a generator's context)."""
    __slots__ = ()

    def __enter__(self):
        with LOCK:
            if STATE[0] == 0:
                STATE[1] = gc.isenabled()
                if STATE[1]:
                    gc.disable()
            STATE[0] += 1

    def __exit__(self, *exc):
        with LOCK:
            STATE[0] -= 1
            if STATE[0] == 0 and STATE[1]:
                gc.enable()
        return False


PAUSED = Paused()
