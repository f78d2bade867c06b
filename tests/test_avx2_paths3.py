"""The AVX2 bodies of issue 18's third round under each forced ISA path in subprocesses, against expectations written
from the formulas: the GEMM's output stage (four rows narrowed at once, constants in hadd order, bias as the
accumulators' start) on the shapes where it dominates: small K (3, 16, 24, 27, 147: 1x1 and few-channel stems),
stride 2, odd channel counts, row counts that leave single rows, multipliers that shift left, every requantization
mode, and 1x1 convs over one or two pixels (the int8-panel GEMV); HARD_SWISH's vectorized int16 arithmetic
(hard_swish_int8_avx2) against a NumPy transcription of reference_ops::HardSwish on all 256 inputs for many
quantization parameters; the byte lookup of shift tables (table[v] = v + c: one byte addition).  The helpers of
test_kernel_paths.CHECK.
"""
import pytest

from test_avx2_paths2 import CONV_EXPECTED
from test_kernel_paths import CHECK, PATHS, run_on_path

CONV_CASES = r'''
from tests.path_cases import conv_case as case_small_k

def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = [case_small_k(rng, 1, (9, 11), 16, 96, 1, 1, 1),         # K 16, 99 rows: 24 tiles and 3 single rows
             case_small_k(rng, 2, (7, 5), 24, 37, 1, 1, 1),          # K 24, batch 2, 37 columns: a 5-column tail
             case_small_k(rng, 1, (6, 7), 3, 13, 1, 1, 0),           # K 3 (padded to 4)
             case_small_k(rng, 1, (13, 12), 3, 32, 3, 2, 0),         # K 27: a 3x3 stride-2 stem
             case_small_k(rng, 1, (23, 21), 3, 33, 7, 2, 0),         # K 147: a 7x7 stride-2 stem
             case_small_k(rng, 1, (10, 9), 16, 19, 1, 2, 1),         # 1x1 stride 2 (im2col)
             case_small_k(rng, 1, (8, 9), 32, 40, 1, 1, 1, True),    # multipliers shifting left
             case_small_k(rng, 1, (9, 8), 24, 11, 3, 2, 1, True),    # 3x3 s2: implicit GEMM
             case_small_k(rng, 1, (1, 1), 641, 203, 1, 1, 1),        # one pixel: the int8-panel GEMV on AVX2
             case_small_k(rng, 2, (1, 1), 96, 37, 1, 1, 1, True),    # two pixels (batch 2)
             case_small_k(rng, 1, (1, 2), 33, 17, 1, 1, 0),
             case_small_k(rng, 1, (1, 1), 40, 29, 1, 1, 1)]          # one row, 32 columns at once, 29 real
    check_modes(cases, failures, kernels)
    print("kernels", " ".join(sorted(kernels)))
    print("\n".join(failures) if failures else "ok")


main()
'''

HARD_SWISH_CHECK = r'''
import sys
import numpy as np
from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.ops.activations import hard_swish_int8_params
from edgeml.runtime.plan import address


def srdhm16(a, b):          # gemmlowp SaturatingRoundingDoublingHighMul<int16>
    ab = a.astype(np.int64) * b
    t = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    r = np.where(t >= 0, t >> 15, -((-t) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, r)


def sat_shift16(v, amount):
    return np.clip(v.astype(np.int64) << amount, -32768, 32767)


def rdbpot16(x, e):         # gemmlowp RoundingDivideByPOT on int16
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def hard_swish(x, p):       # reference_ops::HardSwish<int8_t>, step by step
    v = x.astype(np.int64) - p["input_zero_point"]
    hires = v * 128
    pre = srdhm16(hires, p["output_multiplier_fixedpoint_int16"])
    e = p["reluish_multiplier_exponent"]
    r = sat_shift16(hires, e - 1) if e > 0 else hires
    r = srdhm16(r, p["reluish_multiplier_fixedpoint_int16"])
    if e > 0:
        r = sat_shift16(r, 1)
    if e < 0:
        r = rdbpot16(r, -e)
    r = (r + (1 << 15)) >> 1
    ab = r * pre
    o = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))        # SaturatingDoublingHighMul: truncating
    o = rdbpot16(o, -p["output_multiplier_exponent"])
    o = (o + p["output_zero_point"] + 32768) % 65536 - 32768  # int16 sum
    return np.clip(o, -128, 127).astype(np.int8)


def run(kernel, x, y, p):
    layout = layout_of(kernel)
    ints = layout.ints(n=x.size, in_zp=p["input_zero_point"], out_zp=p["output_zero_point"],
                       reluish_mult=p["reluish_multiplier_fixedpoint_int16"],
                       reluish_exponent=p["reluish_multiplier_exponent"],
                       out_mult=p["output_multiplier_fixedpoint_int16"], out_exponent=p["output_multiplier_exponent"])
    Engine([(kernel_address(kernel), layout.ptrs(input=address(x), output=address(y)), [int(v) for v in ints], [])],
           keepalive=[x, y]).invoke()


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, exponents = [], set()
    every = np.arange(-128, 128, dtype=np.int8)
    params = [(2 ** -7, 0, 2 ** -7, 0), (1.0, 127, 1.0 / 128, -128), (3.0 / 128, -128, 3.0 / 128, 127)]
    for _ in range(400):
        s_in = float(np.exp(rng.uniform(np.log(1e-5), np.log(4.0))))
        s_out = s_in * float(np.exp(rng.uniform(np.log(0.01), np.log(20.0))))
        params.append((s_in, int(rng.integers(-128, 128)), s_out, int(rng.integers(-128, 128))))
    for s_in, zi, s_out, zo in params:
        try:
            p = hard_swish_int8_params(s_in, zi, s_out, zo)
        except ValueError:          # output multiplier >= 1: the op is refused at load
            continue
        exponents.add((p["reluish_multiplier_exponent"], p["output_multiplier_exponent"]))
        want = hard_swish(every, p)
        for kernel in ("hard_swish_int8", "hard_swish_int8_avx2"):
            for shift in (0, 5, 31):                 # every input at several vector positions
                x = np.roll(np.tile(every, 2), shift)
                y = np.zeros(x.size + 32, np.int8)
                run(kernel, x, y, p)
                if not np.array_equal(y[:x.size], np.roll(np.tile(want, 2), shift)) or y[x.size:].any():
                    failures.append(f"{kernel} {(s_in, zi, s_out, zo)} shift {shift}: differs")
    p = hard_swish_int8_params(0.05, -20, 0.03, -100)
    for n in list(range(0, 70)) + [255, 257]:     # the vector loop's tails
        x = rng.integers(-128, 128, n).astype(np.int8)
        y = np.zeros(n + 32, np.int8)
        run("hard_swish_int8_avx2", x, y, p)
        if not np.array_equal(y[:n], hard_swish(x, p)) or y[n:].any():
            failures.append(f"n={n} differs")
    x = rng.integers(-128, 128, 1000).astype(np.int8)
    want = hard_swish(x, p)
    run("hard_swish_int8_avx2", x, x, p)        # in place
    if not np.array_equal(x, want):
        failures.append("in place differs")
    kinds = {(e > 0) - (e < 0) - (e < -7) for e, _ in exponents}     # left, none, right 1-7, right beyond 7
    if len(exponents) < 8 or kinds != {1, 0, -1, -2}:
        failures.append(f"too few exponent pairs covered: {sorted(exponents)}")
    print("kernels hard_swish_int8 hard_swish_int8_avx2")
    print("\n".join(failures) if failures else "ok")


main()
'''


SHIFT_TABLE_CHECK = r'''
import sys
import numpy as np
from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.plan import address


def lookup(x, y, table):
    layout = layout_of("lut_int8")
    Engine([(kernel_address("lut_int8"), layout.ptrs(input=address(x), output=address(y), table=address(table)),
             [int(v) for v in layout.ints(n=x.size)], [])], keepalive=[x, y, table]).invoke()


rng = np.random.default_rng(int(sys.argv[1]))
failures = []
for c in (0, 1, 77, 128, 255):
    shift = ((np.arange(256) + c) % 256).astype(np.uint8)
    near = shift.copy()
    near[200] ^= 1                                   # one entry off the shift: the lookup
    for table in (shift, near):
        for n in (0, 31, 255, 256, 257, 300, 1000, 4099):
            x = rng.integers(0, 256, n, dtype=np.int64).astype(np.uint8)
            x[: min(n, 256)] = np.arange(min(n, 256))
            y = np.zeros(n + 32, np.uint8)
            lookup(x, y, table)
            if not np.array_equal(y[:n], table[x]) or y[n:].any():
                failures.append(f"c={c} n={n} exact shift {table is shift}: differs")
        x = rng.integers(0, 256, 999, dtype=np.int64).astype(np.uint8)
        want = table[x]
        lookup(x, x, table)                        # in place
        if not np.array_equal(x, want):
            failures.append(f"c={c} in place differs")
print("kernels lut_int8")
print("\n".join(failures) if failures else "ok")
'''


@pytest.mark.parametrize("forced", PATHS)
def test_shift_table_lookup_exact_on_every_path(forced):
    assert run_on_path(forced, SHIFT_TABLE_CHECK, 5) == ["kernels", "lut_int8"]


@pytest.mark.parametrize("forced", PATHS)
def test_small_k_conv_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK.rsplit("\nmain()", 1)[0] + CONV_CASES, 7, timeout=600)
    gemv = ["fully_connected_int8_avx2_gemv"] if CONV_EXPECTED[forced] == "conv2d_int8_avx2" else []
    assert kernels[1:] == sorted([CONV_EXPECTED[forced]] + gemv), kernels


@pytest.mark.parametrize("forced", PATHS)
def test_hard_swish_arithmetic_exact_on_every_path(forced):
    assert run_on_path(forced, HARD_SWISH_CHECK, 3) == ["kernels", "hard_swish_int8", "hard_swish_int8_avx2"]


def test_hard_swish_takes_the_arithmetic_on_avx2(tmp_path):
    """On the avx2 path the prepare picks hard_swish_int8_avx2 once it reproduces the table; elsewhere the lookup."""
    script = r'''
import numpy as np
from edgeml.ir import Graph, Op, Quantization, Tensor
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.kernels import CONFIG

def q(s, z):
    return Quantization(np.array([s]), np.array([z]), 0)

g = Graph([Tensor(0, "x", (1, 5, 7, 9), np.dtype(np.int8), q(0.05, -20), None),
           Tensor(1, "y", (1, 5, 7, 9), np.dtype(np.int8), q(0.03, -100), None)],
          [Op(0, "HARD_SWISH", 1, [0], [1], {})], [0], [1])
plan = compile_graph(g, {0: (1, 5, 7, 9)})
print("kernels", CONFIG.isa, plan.steps[0].kernel)
print("ok")
'''
    for forced, kernel in (("avx2", "hard_swish_int8_avx2"), ("scalar", "lut_int8")):
        try:
            names = run_on_path(forced, script)
        except pytest.skip.Exception:
            continue
        assert names == ["kernels", forced, kernel], names
