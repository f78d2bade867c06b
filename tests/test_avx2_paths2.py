"""The AVX2 bodies of issue 18's second round under each forced ISA path in subprocesses, against expectations
written from the formulas: the 256-entry byte table lookup (em_lut.h's XOR-chain body: every byte value at every
vector position, lengths around the 32- and 64-byte steps, tables whose slices differ in one byte, in place) and
int8 CONV_2D whose int16 weights are large enough for the AVX2 GEMM's L2-sized row chunks (packing.avx2_chunk):
1x1 direct rows, 1x1 stride 2 and dilated 3x3 through im2col, several chunks with a short last one, odd channel
counts, every requantization mode and splits over threads (the helpers of test_kernel_paths.CHECK)."""
import pytest

from edgeml.runtime.packing import VNNI_CHUNK_BYTES, avx2_chunk
from test_kernel_paths import CHECK, PATHS, run_on_path

LUT_CHECK = r'''
import sys
import numpy as np
from edgeml.runtime.kernels import Engine, kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.plan import address


def lookup(x, y, table):
    layout = layout_of("lut_int8")
    ptrs = layout.ptrs(input=address(x), output=address(y), table=address(table))
    Engine([(kernel_address("lut_int8"), ptrs, [int(v) for v in layout.ints(n=x.size)], [])],
           keepalive=[x, y, table]).invoke()


def tables(rng):
    yield "random", rng.integers(0, 256, 256, dtype=np.int64).astype(np.uint8)
    yield "identity", np.arange(256, dtype=np.uint8)
    yield "reversed", np.arange(255, -1, -1).astype(np.uint8)
    yield "constant", np.full(256, 0xA5, np.uint8)
    for hot in (0, 7, 8, 15, 0x7F, 0x80, 0xF0, 0xFF):    # one entry differs: a chain term that must cancel
        t = np.zeros(256, np.uint8)
        t[hot] = 0xFF
        yield f"one-hot {hot:#x}", t
    yield "slice-constant", np.repeat(rng.integers(0, 256, 16, dtype=np.int64), 16).astype(np.uint8)


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures = []
    every = np.arange(256, dtype=np.uint8)
    for name, table in tables(rng):
        for shift in (0, 1, 17, 31, 32, 63):         # every byte value at every position of a 32 / 64-byte step
            x = np.roll(np.tile(every, 3), shift)
            y = np.zeros(x.size + 64, np.uint8)
            lookup(x, y, table)
            if not np.array_equal(y[:x.size], table[x]) or y[x.size:].any():
                failures.append(f"{name} all bytes shift {shift}: {int((y[:x.size] != table[x]).sum())} differ")
        for n in list(range(0, 131)) + [191, 192, 193, 4095, 4099]:
            x = rng.integers(0, 256, n, dtype=np.int64).astype(np.uint8)
            y = np.zeros(n + 64, np.uint8)
            lookup(x, y, table)
            if not np.array_equal(y[:n], table[x]) or y[n:].any():
                failures.append(f"{name} n={n}: {int((y[:n] != table[x]).sum())} differ")
        x = rng.integers(0, 256, 1000, dtype=np.int64).astype(np.uint8)
        want = table[x]
        lookup(x, x, table)                        # in place: the activation steps may alias
        if not np.array_equal(x, want):
            failures.append(f"{name} in place differs")
    print("kernels lut_int8")
    print("\n".join(failures) if failures else "ok")


main()
'''

CONV_CASES = r'''
def case_big(rng, n, hw, ic, oc, k, stride, dil, padding):
    """CONV_2D with int16 weights of 256 KiB or more: packing.avx2_chunk's L2-sized chunks."""
    ih, iw = hw
    x_zp, y_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(n, ih, iw, ic)).astype(np.int8)
    w = rng.integers(-127, 128, size=(oc, k, k, ic)).astype(np.int8)
    wscale = rng.uniform(0.0002, 0.004, oc)
    bias = rng.integers(-50000, 50000, oc).astype(np.int32)
    xs, ys = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.5, 5.0))
    ts = [tensor(0, x.shape, np.int8, xs, x_zp), tensor(1, w.shape, np.int8, wscale, 0, w, 0),
          tensor(2, (oc,), np.int32, xs * wscale, 0, bias), tensor(3, (), np.int8, ys, y_zp)]
    opts = {"padding": padding, "stride_h": stride, "stride_w": stride, "dilation_h_factor": dil,
            "dilation_w_factor": dil, "fused_activation_function": int(rng.choice([0, 1, 3])), "depth_multiplier": 1}
    op = Op(0, "CONV_2D", 1, [0, 1, 2], [3], opts)
    oh, pt = spatial_padding(op, ih, k, stride, dil)
    ow, pl = spatial_padding(op, iw, k, stride, dil)
    acc = conv_acc(x, w, bias, x_zp, (stride, stride), (dil, dil), (pt, pl), (oh, ow), False)
    return Graph(ts, [op], [0], [3]), x, acc, f"big x{list(x.shape)} oc{oc} k{k} s{stride} d{dil} pad{padding}"


def main():
    rng = np.random.default_rng(int(sys.argv[1]))
    failures, kernels = [], set()
    cases = [case_big(rng, 1, (7, 7), 520, 260, 1, 1, 1, 1),      # 49 rows: one chunk
             case_big(rng, 1, (20, 21), 515, 257, 1, 1, 1, 1),    # 420 rows: chunks of 124, a short last one
             case_big(rng, 2, (9, 8), 1027, 129, 1, 1, 1, 1),     # batch 2, Kp 1028
             case_big(rng, 1, (15, 13), 517, 260, 1, 2, 1, 0),    # 1x1 stride 2: im2col
             case_big(rng, 1, (13, 14), 61, 301, 3, 1, 2, 1),     # dilated 3x3: im2col, K 549
             case_big(rng, 1, (12, 11), 67, 250, 3, 2, 1, 0)]     # 3x3 stride 2: implicit GEMM
    check_modes(cases, failures, kernels)
    check_threads([case_big(rng, 1, (28, 30), 260, 520, 1, 1, 1, 1)], failures, kernels)
    print("kernels", " ".join(sorted(kernels)))
    print("\n".join(failures) if failures else "ok")


main()
'''

CONV_EXPECTED = {"avx512vnni": "conv2d_int8_vnni", "avxvnni": "conv2d_int8_avxvnni", "avx512": "conv2d_int8_avx2",
                 "avx2": "conv2d_int8_avx2", "scalar": "conv2d_int8", "neon": "conv2d_int8",
                 "neon_dotprod": "conv2d_int8", "neon_i8mm": "conv2d_int8"}


@pytest.mark.parametrize("forced", PATHS)
def test_byte_table_lookup_exact_on_every_path(forced):
    assert run_on_path(forced, LUT_CHECK, 11) == ["kernels", "lut_int8"]


def test_large_weights_take_l2_sized_chunks():
    small_rows = VNNI_CHUNK_BYTES // (2 * 520) // 4 * 4
    assert avx2_chunk(520, 420, 64) == small_rows          # 66 KiB of weights: L1-sized chunks
    assert avx2_chunk(520, 420, 260) == 124                # 264 KiB: 128 KiB chunks
    assert avx2_chunk(520, 49, 260) == 49                  # never more than the rows


@pytest.mark.parametrize("forced", PATHS)
def test_conv_with_large_weights_exact_on_every_path(forced):
    kernels = run_on_path(forced, CHECK.rsplit("\nmain()", 1)[0] + CONV_CASES, 5, timeout=600)
    assert kernels[1:] == [CONV_EXPECTED[forced]], kernels
