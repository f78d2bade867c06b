"""Threads sharing one interpreter: each calls it with random cases and checks every answer (tests of run()'s
atomicity: test_reliability, test_call_path)."""
from __future__ import annotations

import threading
from typing import Callable, Sequence

import numpy as np


def hammer(call: Callable, cases: Sequence, want: Sequence, same: Callable, threads: int, calls: int) -> None:
    """`threads` threads each make `calls` calls call(case k, rng) for random k and compare with want[k] by
    same(got, want); asserts that no call raised and none returned another case's answer."""
    wrong, errors = [], []

    def loop(seed):
        r = np.random.default_rng(seed)
        for _ in range(calls):
            k = int(r.integers(len(cases)))
            try:
                if not same(call(cases[k], r), want[k]):
                    wrong.append(k)
            except Exception as exc:  # noqa: BLE001 - any exception is a failure of the test
                errors.append(repr(exc))
    workers = [threading.Thread(target=loop, args=(s,)) for s in range(1, threads + 1)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors, errors[:3]
    assert not wrong, f"{len(wrong)} of {threads * calls} calls returned another input's output"
