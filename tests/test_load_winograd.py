"""The int8 Winograd conv's one-call prepare (cython_ops/load_gemm.pyx winograd_conv, load_winograd.winograd_arrays)
against its Python twin (ops/conv.prepare_conv_int8_winograd) on the AVX2 path's kernel config: the same step
(kernel, integers, scratch), the same kept arrays in the same order and the pointers into them, over awkward shapes
(input channels not a multiple of 4 or 16, output channels not a multiple of 8, one-pixel and odd images, batch
1..3, SAME / VALID, with and without bias, threads), sparse weights (which the Python prepare takes), and the same
refusals (an overflowing bias, the weight budget).  The run-time sums: tests/test_winograd_paths.py."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_shell, load_winograd
from edgeml.errors import ModelFormatError
from edgeml.runtime.ops import conv as conv_ops, conv_winograd
from load_twins import assert_same_plan, forced_isa
from path_cases import conv_layer


def graph_of(seed, n, hw, ic, oc, padding, bias=True, zeros=0.0, x_zp=None, big_bias=False):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(n, hw[0], hw[1], ic)).astype(np.int8)
    w = rng.integers(-127, 128, size=(oc, 3, 3, ic)).astype(np.int8)
    if zeros:       # whole 16 x 4 blocks of the [OC][9 IC] matrix zero: the sparse kernel's case
        w2 = w.reshape(oc, 9 * ic)
        for r in range(0, oc, 16):
            for k in range(0, 9 * ic, 4):
                if rng.random() < zeros:
                    w2[r:r + 16, k:k + 4] = 0
    b = rng.integers(-5000, 5000, oc).astype(np.int32)
    if big_bias:        # with the input zero point -128: bias + 128 * sum w past int32
        b[oc // 2] = 2 ** 31 - 1 - 5
        w[oc // 2] = 100
    zp = int(rng.integers(-128, 128)) if x_zp is None else x_zp
    g, _ = conv_layer("CONV_2D", x, w, b, zp, int(rng.integers(-128, 128)), float(rng.uniform(0.01, 0.1)),
                      float(rng.uniform(0.05, 0.5)), rng.uniform(0.0002, 0.02, oc), padding, (1, 1), (1, 1),
                      int(rng.choice([0, 1, 3])))
    if not bias:
        g.ops[0].inputs[2] = -1
    return g


def assert_twins(build, error=None, fragment=None, **options):
    """On the AVX2 path's kernels, the one-call prepare's plan (or refusal) equals the Python prepare's (ops/conv.py,
    where the shell declines): load_twins.assert_same_plan, pointers into the kept arrays included."""
    with forced_isa("avx2"), pytest.MonkeyPatch.context() as patch:
        # (the twin's transform in numpy: the one-call prepare's C transform is then compared with it too)
        patch.setattr(load_winograd, "winograd_weights", lambda w, out: conv_winograd.winograd_panels(w, out))
        return assert_same_plan(build, [(load_shell, "int8_conv_shell")], 0, error, fragment, **options)


SHAPES = [(1, (1, 1), 12, 8, 0), (2, (2, 3), 13, 1, 1), (3, (5, 4), 16, 7, 0), (1, (7, 9), 21, 17, 0),
          (1, (8, 8), 33, 16, 1), (2, (9, 10), 19, 70, 0), (1, (6, 5), 130, 9, 0), (1, (4, 4), 520, 8, 1),
          (1, (3, 3), 12, 3, 0), (1, (11, 6), 63, 33, 1)]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_winograd_steps_equal_the_python_prepare(shape, bias):
    n, hw, ic, oc, padding = shape
    made = assert_twins(lambda: graph_of(sum(hw) + ic + oc, n, hw, ic, oc, padding, bias))
    assert [s[0] for s in made[0]] == ["conv2d_int8_avx2_winograd"]


@pytest.mark.parametrize("threads", [2, 3])
def test_winograd_steps_split_over_threads_as_the_python_prepare(threads, monkeypatch):
    monkeypatch.setattr(conv_ops, "THREAD_MIN_MACS", 0)
    for n, hw, ic, oc in ((2, (37, 35), 16, 40), (1, (3, 20), 64, 64), (1, (1, 5), 12, 9)):
        made = assert_twins(lambda: graph_of(ic, n, hw, ic, oc, 0), num_threads=threads)
        assert made[0][0][0] == "conv2d_int8_avx2_winograd"


@pytest.mark.parametrize("sparse", ["auto", "on", "off"])
@pytest.mark.parametrize("zeros", [0.0, 0.1, 0.5, 0.95])
def test_sparse_weights_take_the_python_prepares_choice(zeros, sparse):
    made = assert_twins(lambda: graph_of(5, 1, (6, 7), 32, 40, 0, zeros=zeros), sparse=sparse)
    dense = sparse == "off" or (sparse == "auto" and zeros < 0.2)       # (avx2 kxk: sparse at density 0.75)
    assert (made[0][0][0] == "conv2d_int8_avx2_winograd") == dense, made[0][0][0]


def test_an_overflowing_bias_gets_the_python_prepares_error():
    assert_twins(lambda: graph_of(3, 1, (4, 5), 24, 11, 0, x_zp=-128, big_bias=True), ModelFormatError,
                 "(CONV_2D v1): bias and weights overflow the int32 accumulator")


@pytest.mark.parametrize("budget", [100, 16 * 16 * 24 * 2 + 10, 16 * 16 * 24 * 2 + 16 * 24 - 1])
def test_the_weight_budget_refuses_as_the_python_prepare(budget):
    assert_twins(lambda: graph_of(4, 1, (5, 5), 24, 11, 0), ModelFormatError, "(Interpreter max_weight_bytes)",
                 max_weight_bytes=budget)


def test_the_transform_equals_the_numpy_form_and_checks_its_arrays():
    w = np.random.default_rng(9).integers(-128, 128, (5, 3, 3, 26)).astype(np.int8)
    out = np.full((16, 1, 7, 8, 4), 3, np.int16)
    load_winograd.winograd_weights(w, out)
    np.testing.assert_array_equal(out, conv_winograd.winograd_panels(w))
    with pytest.raises(ValueError, match="do not match"):
        load_winograd.winograd_weights(w, np.zeros((16, 2, 7, 8, 4), np.int16))      # a panel too many



def graph_with_zero_blocks(seed, ic, oc, zeros, late=0.25):
    """graph_of's one 3x3 conv with whole blocks of the sparse kernel's layout zero (16 filters x 4 values of a
    window row of 3 * IC values, its last block short when IC is not a multiple of 4), each with probability
    `zeros`; a fraction `late` of them keep one nonzero value in a late row of the block (so the probe reads on)."""
    g = graph_of(seed, 1, (5, 6), ic, oc, 0)
    w = g.tensors[g.ops[0].inputs[1]].data      # (conv_layer's constant: [OC][3][3][IC], written in place)
    rows = w.reshape(oc, 3, 3 * ic)
    rng = np.random.default_rng(seed)
    for r in range(0, oc, 16):
        for ky in range(3):
            for k in range(0, 3 * ic, 4):
                if rng.random() < zeros:
                    rows[r:r + 16, ky, k:k + 4] = 0
                    if rng.random() < late:
                        rows[min(oc - 1, r + 9), ky, k] = 5
    return g


@pytest.mark.parametrize("ic", [12, 13, 14, 15, 22])
def test_the_density_probe_takes_the_python_prepares_choice_near_the_limit(ic, monkeypatch):
    """The one-call prepare's probe (load_gemm em_sparse_enough: the first nonzero row of each block decides it, the
    count stops past the limit) against the Python prepare's full count, at densities around the AVX2 kxk limit
    (0.75), with window rows of 3 * IC values each padded to a multiple of 4 (IC not a multiple of 4), a last group
    of fewer than 16 filters, and zero blocks that one late row makes nonzero; the dense cases built by the
    one-call prepare itself."""
    chosen, declined = [], []
    twin = conv_ops.prepare_conv2d_int8

    def counted(*args):         # (called with the shell's values where the one-call prepare declines)
        declined[-1] += 1
        return twin(*args)
    monkeypatch.setattr(conv_ops, "prepare_conv2d_int8", counted)
    for seed, (oc, zeros, late) in enumerate([(40, 0.25, 0.25), (40, 0.3, 0.25), (40, 0.33, 0.25), (33, 0.3, 0.25),
                                              (33, 0.36, 0.25), (17, 0.33, 0.25), (70, 0.32, 0.25), (70, 0.35, 0.25),
                                              (40, 0.38, 0.25), (33, 0.42, 0.25), (40, 0.45, 0.6), (33, 0.5, 0.7)]):
        declined.append(0)
        made = assert_twins(lambda: graph_with_zero_blocks(seed * 7 + ic, ic, oc, zeros, late))
        chosen.append(made[0][0][0])
    assert len(set(chosen)) == 2, chosen        # (both choices made over the cases)
    # dense weights are the one-call prepare's own (it declines the sparse ones only)
    assert declined == [int(k != "conv2d_int8_avx2_winograd") for k in chosen], (chosen, declined)


def test_winograd_arrays_refuses_arrays_of_another_type_or_size():
    """winograd_arrays reads its arrays' bytes without typed memoryviews: an array of another element type or
    length, or not C-contiguous, is refused (ValueError, nothing read or written past it), as the memoryviews did."""
    oc, ic = 11, 13
    w = np.random.default_rng(2).integers(-127, 128, (oc, 3, 3, ic)).astype(np.int8)
    ocp, icp = 16, 16

    def arrays(**change):
        a = dict(w=w, bias=np.arange(oc, dtype=np.int32), ws=np.full(oc, 0.01),
                 u=np.zeros((16, ocp // 8, icp // 4, 8, 4), np.int16), b=np.zeros(ocp, np.int32),
                 m=np.zeros(ocp, np.int32), s=np.zeros(ocp, np.int32), s64=np.zeros(ocp), s32=np.zeros(ocp, np.float32))
        a.update(change)
        return (a["w"], a["bias"], 3, 0.05, a["ws"], 0.1, 0, a["u"], a["b"], a["m"], a["s"], a["s64"], a["s32"])

    load_winograd.winograd_arrays(*arrays())
    for change in (dict(u=np.zeros((16, ocp // 8, icp // 4, 8, 4), np.int32)), dict(m=np.zeros(ocp, np.int64)),
                   dict(s=np.zeros(ocp, np.uint32)), dict(s64=np.zeros(ocp, np.float32)),
                   dict(s32=np.zeros(ocp)), dict(b=np.zeros(ocp, np.float32)), dict(ws=np.full(oc, 0.01, np.float32)),
                   dict(bias=np.arange(oc, dtype=np.int64)), dict(w=w.astype(np.uint8)),
                   dict(w=np.ascontiguousarray(w.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)),
                   dict(ws=np.full(2 * oc, 0.01)[::2]), dict(m=np.zeros(ocp + 1, np.int32)),
                   dict(u=np.zeros((16, ocp // 8, icp // 4 + 1, 8, 4), np.int16)),
                   dict(bias=np.arange(oc + 1, dtype=np.int32))):
        with pytest.raises(ValueError):
            load_winograd.winograd_arrays(*arrays(**change))
    for name in ("u", "b", "m", "s", "s64", "s32"):       # the arrays it writes: a read-only one is refused
        frozen = arrays()[dict(u=7, b=8, m=9, s=10, s64=11, s32=12)[name]].copy()
        frozen.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            load_winograd.winograd_arrays(*arrays(**{name: frozen}))
        assert not frozen.any()
    frozen = np.zeros((16, ocp // 8, icp // 4, 8, 4), np.int16)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        load_winograd.winograd_weights(w, frozen)
