"""The load profile (edgeml/runtime/load_profile.py): collect() gathers each stage of a load with its call count,
stages nest, and outside collect() a stage is one shared idle context that records nothing."""
from __future__ import annotations

import time

import edgeml
from edgeml.runtime import load_profile
from edgeml.runtime.load_profile import IDLE, collect, stage


def test_stages_of_a_load_are_collected(reference_models):
    with collect(time.thread_time) as totals:
        edgeml.Interpreter(reference_models / "mlperf_tiny" / "kws_ref_model.tflite")
    for name in ("read model", "arena plan", "bind engine", "interpreter setup", "prepare CONV_2D"):
        seconds, calls = totals[name]
        assert seconds > 0 and calls >= 1, name
    assert totals["prepare CONV_2D"][1] == 5 and totals["read model"][1] == 1
    assert not load_profile.ACTIVE


def test_stages_nest_and_idle_outside_collect():
    assert stage("x") is IDLE
    with stage("x") as entered:
        assert entered is None
    with collect() as totals:
        with stage("outer"):
            with stage("inner"):
                pass
        with stage("inner"):
            pass
    assert totals["outer"][1] == 1 and totals["inner"][1] == 2
    assert totals["outer"][0] >= 0 and stage("x") is IDLE
