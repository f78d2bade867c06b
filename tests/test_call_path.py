"""The Python call path (cython_ops/callpath.pyx): set_input / invoke / get_output / run in C.

Every input form gives exactly the outputs LiteRT's reference kernels give (and the checked path gives); whatever
the C path does not take (another dtype, shape or type, a non-contiguous array, a bad index, a missing name) gets
the checked path's error or copy, and leaves the inputs as they were; outputs are the caller's own (a copy never
changes afterwards, even where run() recycles a dropped output's array); a resize or clone re-binds the path;
threads sharing one interpreter get their own answers; the lock behaves as threading.RLock."""
from __future__ import annotations

import gc
import re
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
from call_models import tiny_model
from litert_reference import reference_model, run_reference
from thread_hammer import hammer

import edgeml
from cython_ops import callpath
from edgeml import InputError

MODELS = Path(__file__).resolve().parent / "models" / "mlperf_tiny"
TINY = ("fc_int8", "fc_uint8", "two_io")


def random_inputs(it, rng, batch=None) -> list:
    out = []
    for d in it.get_input_details():
        shape = tuple(int(s) for s in d["shape"])
        if batch is not None:
            shape = (batch,) + shape[1:]
        info = np.iinfo(d["dtype"])
        out.append(rng.integers(info.min, info.max + 1, size=shape).astype(d["dtype"]))
    return out


def single(ys):
    return ys[0] if len(ys) == 1 else ys


def forms(it, xs) -> dict:
    """Every way to hand `xs` to the interpreter: name -> outputs (an array or a list)."""
    names = [d["name"] for d in it.get_input_details()]
    n_out = len(it.get_output_details())

    def set_get(copy=True):
        for i, x in enumerate(xs):
            it.set_input(x, i)
        it.invoke()
        return single([np.array(it.get_output(i, copy=copy)) for i in range(n_out)])
    out = {"list": it.run(list(xs)), "tuple": it.run(tuple(xs)), "dict": it.run(dict(zip(names, xs))),
           "set_get": set_get(), "set_get_view": set_get(copy=False),
           "strided": it.run([np.repeat(x, 2, axis=-1)[..., ::2] for x in xs])}       # the checked copy
    out["numpy_index"] = single([it.get_output(np.int64(i)) for i in range(n_out)])
    out["keywords"] = single([it.get_output(index=i, copy=True) for i in range(n_out)])
    if len(xs) == 1:
        out["array"] = it.run(xs[0])
    return out


@pytest.mark.parametrize("kind", TINY)
def test_every_input_form_equals_litert(kind):
    data = tiny_model(kind)
    it = edgeml.Interpreter(data)
    ref = reference_model(data)
    rng = np.random.default_rng(len(kind))
    for _ in range(12):
        xs = random_inputs(it, rng)
        want = single(run_reference(ref, xs))
        for form, got in forms(it, xs).items():
            for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
                assert g.dtype == w.dtype and g.shape == w.shape, form
                np.testing.assert_array_equal(g, w, err_msg=form)


def test_every_input_form_equals_litert_on_ad01():
    path = MODELS / "ad01_int8.tflite"
    it = edgeml.Interpreter(path)
    ref = reference_model(path.read_bytes())
    rng = np.random.default_rng(3)
    for _ in range(4):
        xs = random_inputs(it, rng)
        want = run_reference(ref, xs)[0]
        for form, got in forms(it, xs).items():
            np.testing.assert_array_equal(got, want, err_msg=form)


def test_float_run_equals_the_checked_path():
    """run() of float data on an int8 model (the C float path: QUANTIZE, the plan, DEQUANTIZE) equals the checked
    path's quantize -> run -> dequantize in numpy, bit for bit, for float32 and float64, in range and beyond;
    values that are not finite are refused and leave the input alone."""
    for data in (tiny_model("fc_int8"), (MODELS / "ad01_int8.tflite").read_bytes()):
        it = edgeml.Interpreter(data)
        checked = edgeml.Interpreter(data)
        d = it.get_input_details()[0]
        rng = np.random.default_rng(5)
        span = d["scale"] * 300
        for k in range(8):
            x = rng.uniform(-span, span, size=tuple(d["shape"]))
            for dtype in (np.float32, np.float64):
                got = it.run(x.astype(dtype))
                want = checked._run(x.astype(dtype))      # the checked path: numpy quantize / dequantize
                assert got.dtype == np.float32
                np.testing.assert_array_equal(got, want)
        it.run(x.astype(np.float32))
        before = it.get_output()
        bad = x.astype(np.float32)
        bad.flat[-1] = np.nan
        with pytest.raises(InputError, match="not finite"):
            it.run(bad)
        it.invoke()
        np.testing.assert_array_equal(it.get_output(), before)    # the input was left as it was


def test_float_run_on_a_uint8_model_quantizes_to_the_uint8_range():
    """A uint8 model (TF1 / Coral quantization) takes float data in run() too: quantized with its input's scale and
    zero point over 0..255, the uint8 outputs dequantized, equal to LiteRT's reference kernels on those bytes."""
    from edgeml import numerics as Q
    data = tiny_model("fc_uint8")
    it = edgeml.Interpreter(data)
    ref = reference_model(data)
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    assert d["dtype"] == np.uint8 and o["dtype"] == np.uint8
    rng = np.random.default_rng(11)
    span = d["scale"] * 300          # beyond both ends of the range: saturates to 0 and 255
    for k in range(8):
        x = (rng.uniform(-span, span, size=tuple(d["shape"])) + d["scale"] * (128 - d["zero_point"]))
        for dtype in (np.float32, np.float64):
            q = Q.quantize_array(x.astype(dtype), d["scale"], d["zero_point"], np.uint8)
            want = Q.dequantize_array(run_reference(ref, [q])[0], o["scale"], o["zero_point"])
            got = it.run(x.astype(dtype))
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want)
    assert q.min() == 0 and q.max() == 255


@pytest.mark.parametrize("kind", TINY)
def test_what_the_c_path_does_not_take_gets_the_checked_errors(kind):
    it = edgeml.Interpreter(tiny_model(kind))
    details = it.get_input_details()
    n = len(details)
    rng = np.random.default_rng(1)
    xs = random_inputs(it, rng)
    good = it.run(xs)
    x0 = xs[0] ^ np.array(1, xs[0].dtype)            # another first input: must not be copied in
    dtype = details[0]["dtype"]
    other = np.int8 if dtype != np.int8 else np.uint8
    name = details[0]["name"]
    shape = list(xs[0].shape)

    def last_bad(bad):      # good inputs (a new first one), then a bad last one
        return [x0] + xs[1:-1] + [bad] if n > 1 else [bad]
    cases = [
        (lambda: it.set_input(x0.astype(other)), re.escape(f"input 0 ('{name}'): expected dtype {np.dtype(dtype)}, "
                                                           f"got {np.dtype(other)}")),
        (lambda: it.set_input(x0.astype(np.float32)), "expected dtype"),
        (lambda: it.set_input(np.zeros([2] + shape[1:], dtype)), re.escape(f"expected shape {shape}, got [2, ")),
        (lambda: it.set_input(xs[0].reshape(-1)), "expected shape"),
        (lambda: it.set_input(xs[0].tolist()), "expected a numpy array, got list"),
        (lambda: it.set_input(xs[0], n), f"input index {n} out of range"),
        (lambda: it.set_input(xs[0], -1), "input index -1 out of range"),
        (lambda: it.set_input(xs[0], 1 << 70), "out of range"),
        (lambda: it.set_input(xs[0], True), "out of range"),
        (lambda: it.get_output(len(it.get_output_details())), "output index .* out of range"),
        (lambda: it.get_output(-1), "output index -1 out of range"),
        (lambda: it.get_output(0.0), "output index 0.0 out of range"),
        (lambda: it.run([x0] + xs), re.escape(f"expected {n} input array(s), got {n + 1}")),
        (lambda: it.run({"nope": xs[0]}), "missing input"),
        (lambda: it.run([x0.astype(other)] + xs[1:]), "expected dtype"),
        (lambda: it.run(last_bad(np.zeros([1, 5], xs[-1].dtype))), "expected shape"),
        (lambda: it.run(last_bad(xs[-1].astype(np.int16))), "expected dtype"),
    ]
    if n > 1:
        cases.append((lambda: it.run(xs[0]), f"the model has {n} inputs"))
    for call, message in cases:
        with pytest.raises(InputError, match=message):
            call()
        # nothing was copied in: the last good inputs still give the last good outputs
        it.invoke()
        got = [it.get_output(i) for i in range(len(it.get_output_details()))]
        for g, w in zip(got, good if isinstance(good, list) else [good]):
            np.testing.assert_array_equal(g, w)


def test_states_and_first_calls():
    """The C path keeps the interpreter's states: nothing read before invoke, nothing invoked before every input
    is set; a first run() marks every input set."""
    for kind in TINY:
        data = tiny_model(kind)
        it = edgeml.Interpreter(data)
        xs = random_inputs(it, np.random.default_rng(2))
        with pytest.raises(InputError, match="read before invoke"):
            it.get_output()
        with pytest.raises(InputError, match="read before invoke"):
            it.get_output(0, copy=False)
        with pytest.raises(InputError, match="input 0 .* has not been set"):
            it.invoke()
        it.set_input(xs[0])
        if len(xs) > 1:
            with pytest.raises(InputError, match="input 1 .* has not been set"):
                it.invoke()
        fresh = edgeml.Interpreter(data)
        want = fresh.run(xs)
        fresh.invoke()                              # every input counts as set after run()
        got = single([fresh.get_output(i) for i in range(len(fresh.get_output_details()))])
        for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
            np.testing.assert_array_equal(g, w)


def test_outputs_are_the_callers_own():
    """A copy never changes afterwards: run() copies into a dropped output's array only when nothing refers to
    it (no reference, view, exported buffer or weak reference) and it still has the output's dtype, shape and
    writeability; a view (copy=False) is read-only and follows the interpreter."""
    it = edgeml.Interpreter(tiny_model("fc_int8"))
    rng = np.random.default_rng(4)
    xs = [random_inputs(it, rng)[0] for _ in range(40)]
    want = [it.run(x) for x in xs]
    assert len({id(w) for w in want}) == len(want)
    # held outputs never change
    held = [it.run(x) for x in xs]
    for h, w in zip(held, want):
        np.testing.assert_array_equal(h, w)
    # views, buffers, weak references and in-place changes of dropped outputs
    view = it.run(xs[0])[0, :]
    buffer = memoryview(it.run(xs[1]))
    y = it.run(xs[2])
    ref = weakref.ref(y)
    del y
    reshaped = it.run(xs[3])
    reshaped.shape = (3, 1)
    del reshaped
    frozen = it.run(xs[4])
    frozen.flags.writeable = False
    del frozen
    retyped = it.run(xs[5])
    retyped.dtype = np.uint8
    del retyped
    gc.collect()
    for k in range(6, 40):
        y = it.run(xs[k])
        assert y.shape == (1, 3) and y.dtype == np.int8 and y.flags.writeable and y.flags.c_contiguous
        np.testing.assert_array_equal(y, want[k])
        y2 = it.get_output()
        np.testing.assert_array_equal(y2, want[k])
        assert y2 is not y
    np.testing.assert_array_equal(view, want[0][0])
    np.testing.assert_array_equal(np.asarray(buffer), want[1])
    assert ref() is None or np.array_equal(ref(), want[2])
    # a weak reference to a dropped output that is still a spare (the first of two, tried first)
    fresh = edgeml.Interpreter(tiny_model("fc_int8"))
    a = fresh.run(xs[0])
    b = fresh.run(xs[1])
    del b
    ref = weakref.ref(a)
    del a
    c = fresh.run(xs[2])
    np.testing.assert_array_equal(c, want[2])
    assert ref() is not None
    np.testing.assert_array_equal(ref(), want[0])
    # a view follows the interpreter and cannot be written
    v = it.get_output(copy=False)
    assert not v.flags.writeable
    it.run(xs[0])
    np.testing.assert_array_equal(v, want[0])
    with pytest.raises(ValueError):
        v[0, 0] = 1


def test_resize_and_clone_rebind_the_call_path():
    it = edgeml.Interpreter(MODELS / "ad01_int8.tflite")
    rng = np.random.default_rng(8)
    x1 = rng.integers(-128, 128, size=(1, 640), dtype=np.int8)
    x3 = rng.integers(-128, 128, size=(3, 640), dtype=np.int8)
    y1 = it.run(x1)
    it.resize_input(0, (3, 640))
    with pytest.raises(InputError, match=r"expected shape \[3, 640\], got \[1, 640\]"):
        it.set_input(x1)
    with pytest.raises(InputError, match="has not been set"):
        it.invoke()
    with pytest.raises(InputError, match="read before invoke"):
        it.get_output()
    y3 = it.run(x3)
    assert y3.shape == (3, 640)
    np.testing.assert_array_equal(it.run(x1), y1)         # run() re-plans for batch 1 again
    twin = it.clone()
    np.testing.assert_array_equal(twin.run([x1]), y1)
    yf = it.run(x1.astype(np.float32))
    np.testing.assert_array_equal(twin.run(x1.astype(np.float32)), yf)
    # a re-plan refused by the arena budget keeps the plan, and its call path, as they were
    small = edgeml.Interpreter(MODELS / "ad01_int8.tflite", max_arena_bytes=it.arena_bytes)
    np.testing.assert_array_equal(small.run(x1.astype(np.float32)), yf)
    small.resize_input(0, (64, 640))
    with pytest.raises(InputError, match="cannot run with input shapes"):
        small.invoke()
    np.testing.assert_array_equal(small.run(x1), y1)
    np.testing.assert_array_equal(small.run(x1.astype(np.float32)), yf)
    small.set_input(x1)
    small.invoke()
    np.testing.assert_array_equal(small.get_output(), y1)


@pytest.mark.parametrize("kind", ["fc_int8", "two_io"])
def test_threads_sharing_one_interpreter_get_their_own_answers(kind):
    """run() in every form is atomic, and a thread holding the lock (a Python path) keeps the C path out."""
    it = edgeml.Interpreter(tiny_model(kind))
    names = [d["name"] for d in it.get_input_details()]
    rng = np.random.default_rng(9)
    xs = [random_inputs(it, rng) for _ in range(8)]
    want = [it.run(x) for x in xs]

    def same(a, b):
        return all(np.array_equal(p, q) for p, q in zip(a, b)) if isinstance(a, list) else np.array_equal(a, b)

    def call(x, r):         # one of run()'s forms: the array(s), a dict by name, a tuple
        form = int(r.integers(3))
        return it.run(x if form == 0 else dict(zip(names, x)) if form == 1 else (x[0] if len(x) == 1 else tuple(x)))
    hammer(call, xs, want, same, threads=3, calls=3000)


def test_threads_sharing_one_interpreter_take_turns():
    """Two threads calling run() in a loop on one tiny interpreter both get through: the lock is handed to the
    waiting thread (before: the thread that had just released it took it again, 400000 runs to 1 in 4 s)."""
    it = edgeml.Interpreter(tiny_model("fc_int8"))
    x = random_inputs(it, np.random.default_rng(0))[0]
    want = it.run(x)
    runs = [0, 0]
    wrong = []
    stop = threading.Event()

    def loop(k):
        while not stop.is_set():
            if not np.array_equal(it.run(x), want):
                wrong.append(k)
            runs[k] += 1
    threads = [threading.Thread(target=loop, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    threading.Event().wait(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert not wrong
    assert min(runs) > 0.05 * max(runs), runs


def test_the_lock_is_a_reentrant_lock():
    it = edgeml.Interpreter(tiny_model("fc_int8"))
    x = random_inputs(it, np.random.default_rng(0))[0]
    lock = it._lock
    assert isinstance(lock, callpath.CallLock)
    with lock:
        with lock:
            assert lock._is_owned()
            y = it.run(x)                   # the C path takes it again in the same thread
        assert lock._is_owned()
    assert not lock._is_owned()
    with pytest.raises(RuntimeError, match="un-acquired"):
        lock.release()
    order = []
    lock.acquire()
    worker = threading.Thread(target=lambda: order.append(("ran", it.run(x))))
    worker.start()
    worker.join(0.2)
    assert worker.is_alive() and not order           # run() waits while another thread holds the lock
    other = threading.Thread(target=lambda: order.append(lock.acquire(blocking=False)))
    other.start()
    other.join()
    order.append("released")
    lock.release()
    worker.join(5)
    assert order[0] is False and order[1] == "released" and order[2][0] == "ran"
    np.testing.assert_array_equal(order[2][1], y)


def test_numpy_array_fields_were_verified():
    """The C path reads numpy's array fields directly only after checking them on live arrays at import."""
    assert callpath.check_fields() is True
