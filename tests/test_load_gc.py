"""Interpreter() pauses the cyclic garbage collector while it loads (the load makes no cycles, and the collector's
passes over the containers it builds cost ~9% of a large model's load) and leaves it as it found it, also when the
load fails."""
from __future__ import annotations

import gc
import threading

import pytest

import edgeml
from edgeml.errors import ModelFormatError
from edgeml.runtime import collector
from edgeml.runtime import interpreter as interpreter_module
from test_load_reader import KWS


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_during_the_load_and_restored(enabled, monkeypatch):
    seen = []
    real = interpreter_module.compile_graph

    def compile_graph(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)
    monkeypatch.setattr(interpreter_module, "compile_graph", compile_graph)
    (gc.enable if enabled else gc.disable)()
    try:
        edgeml.Interpreter(KWS)
        assert seen == [False] and gc.isenabled() is enabled
    finally:
        gc.enable()


@pytest.mark.parametrize("enabled", [True, False])
def test_a_failed_load_restores_the_collector(enabled):
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(ModelFormatError, match="TFL3"):
            edgeml.Interpreter(b"\x00" * 64)
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_a_load_leaves_no_cycle_behind():
    edgeml.Interpreter(KWS)         # (a first load's one-time work: imports, the options specs read off sources)
    gc.collect()
    interpreter = edgeml.Interpreter(KWS)
    del interpreter
    assert gc.collect() == 0


@pytest.mark.parametrize("order", ["nested", "crossed"])
@pytest.mark.parametrize("enabled", [True, False])
def test_overlapping_loads_leave_the_collector_as_they_found_it(order, enabled):
    """Two loads in flight at once (two threads): whichever finishes last, the collector ends as it was before the
    first began (a per-load save and restore would leave it off when the second load started during the first)."""
    (gc.enable if enabled else gc.disable)()
    first, second = collector.Paused(), collector.Paused()
    try:
        first.__enter__()
        second.__enter__()
        assert not gc.isenabled()
        (first if order == "crossed" else second).__exit__(None, None, None)
        assert not gc.isenabled()
        (second if order == "crossed" else first).__exit__(None, None, None)
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_loads_in_threads_leave_the_collector_on():
    errors = []

    def load():
        try:
            for _ in range(5):
                edgeml.Interpreter(KWS)
        except Exception as exc:            # (reported below)
            errors.append(exc)
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and gc.isenabled() and collector.STATE[0] == 0
