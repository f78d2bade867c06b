"""Where a model's load time goes, collected only on request (`benchmarks/bench_models.py --load-profile`): the
reader, each op type's prepare, the weight packers, requantization and tables inside the prepares, the arena plan
and the engine binding.  Off (one global test per timed call) unless `collect()` is active."""
from __future__ import annotations

import functools
import time
from contextlib import contextmanager

ACTIVE = []        # the stage totals being collected (a list so that nested collect() calls stack)
CLOCK = [time.perf_counter]      # time.thread_time counts this thread's CPU only (steadier on a busy machine)


@contextmanager
def collect(clock=time.perf_counter):
    """Collects {stage: [seconds, calls]} for the loads run inside the block; stages nest (a packer's time is
    also inside its op's prepare)."""
    totals = {}
    CLOCK.append(clock)
    ACTIVE.append(totals)
    try:
        yield totals
    finally:
        ACTIVE.remove(totals)
        CLOCK.pop()


class Idle:
    """stage()'s context while nothing collects: entering and leaving it do nothing (a generator-based context
    manager costs about a microsecond per use, on every load)."""
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


IDLE = Idle()


def stage(name: str):
    """The context whose time counts as stage `name` while collecting."""
    return timing(name) if ACTIVE else IDLE


@contextmanager
def timing(name: str):
    clock = CLOCK[-1]
    t0 = clock()
    try:
        yield
    finally:
        entry = ACTIVE[-1].setdefault(name, [0.0, 0])
        entry[0] += clock() - t0
        entry[1] += 1


def timed(name: str):
    """Decorator: the function's calls count as stage `name` while collecting."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            if not ACTIVE:
                return fn(*args, **kwargs)
            with stage(name):
                return fn(*args, **kwargs)
        return run
    return wrap
