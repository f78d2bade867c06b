"""The load shells' one check (issue 15): a graph planned with a Cython shell gives exactly what its Python twin
gives (each step's kernel, scratch, integers and floats, every kept array's type, shape and bytes, every folded
constant), or both refuse it with the same EdgeMLError, type and message.  Shell tests build a graph, name the
shells to swap out ((module, function name) pairs: each then returns None, so the Python twin decides) and call
assert_same_plan."""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Callable, Optional

import numpy as np
import pytest

from edgeml.errors import EdgeMLError
from edgeml.runtime import kernels
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.plan import address as data_address


def plan_contents(graph, rounding: int = 0, **options) -> tuple:
    """(steps as (kernel, scratch bytes, integers, floats, each pointer as (kept array, byte offset) or 0), kept
    arrays, folded constants) of graph's plan; options: compile_graph's (num_threads, sparse, max_weight_bytes)."""
    plan = compile_graph(graph, {}, rounding, **options)
    spans = [(data_address(a), a.nbytes, k) for k, a in enumerate(plan.keep) if isinstance(a, np.ndarray)]
    steps = []
    for step in plan.steps:
        ptrs, ints, floats, *_ = step.make(lambda t: 0)
        layout = layout_of(step.kernel)
        places = {name: (p if not isinstance(p, int) or p == 0 else
                         next(((k, p - start) for start, nbytes, k in spans if start <= p <= start + nbytes), "?"))
                  for name, p in ptrs.items()}
        steps.append((step.kernel, step.scratch_bytes, [int(v) for v in layout.ints(**ints)],
                      [float(v) for v in layout.floats(**floats)], places))
    kept = [(a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes()) for a in plan.keep if isinstance(a, np.ndarray)]
    constants = {t: (a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes()) for t, a in plan.constants.items()}
    return steps, kept, constants


def plan_or_error(build: Callable, rounding: int, **options):
    try:
        return plan_contents(build(), rounding, **options)
    except EdgeMLError as exc:
        return type(exc), str(exc)


def assert_same_plan(build: Callable, shells, rounding: int = 0, error: Optional[type] = None,
                     fragment: Optional[str] = None, **options):
    """build() makes a fresh graph; `shells`: (module, name) pairs swapped out for the twin's plan (restored
    after).  With `error`, both paths must raise that EdgeMLError type with one message containing `fragment`;
    otherwise both must plan, identically; options: compile_graph's.  Returns the fast path's plan contents (or
    (type, message))."""
    fast = plan_or_error(build, rounding, **options)
    with pytest.MonkeyPatch.context() as patch:
        for module, name in shells:
            patch.setattr(module, name, lambda *args: None)
        plain = plan_or_error(build, rounding, **options)
    if error is not None:
        assert fast == plain, f"the shell's error {fast} differs from the Python path's {plain}"
        assert fast[0] is error and fragment in fast[1], fast
        return fast
    assert not (isinstance(plain[0], type) and issubclass(plain[0], EdgeMLError)), f"Python path refused: {plain}"
    assert not (isinstance(fast[0], type) and issubclass(fast[0], EdgeMLError)), f"the shell refused: {fast}"
    assert [s[0] for s in fast[0]] == [s[0] for s in plain[0]], "different kernels"
    assert fast[0] == plain[0], "different step scratch, integers, floats or pointers"
    assert fast[1] == plain[1], "different kept arrays"
    assert fast[2] == plain[2], "different folded constants"
    return fast


@contextmanager
def forced_isa(isa: str):
    """kernels.CONFIG as EDGEML_ISA=<isa> makes it, inside the block (restored after)."""
    saved = dataclasses.replace(kernels.CONFIG)
    forced = kernels.config_for(isa)
    for f in dataclasses.fields(forced):
        object.__setattr__(kernels.CONFIG, f.name, getattr(forced, f.name))
    try:
        yield isa
    finally:
        for f in dataclasses.fields(saved):
            object.__setattr__(kernels.CONFIG, f.name, getattr(saved, f.name))

