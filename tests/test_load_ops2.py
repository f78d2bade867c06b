"""Issue 15, load time (the per-op costs): what the faster load paths must keep exactly as it was.

- int8 ADD / SUB / MUL against a periodic constant: the P x 256 byte tables, now built by the op's vector body,
  equal the scalar kernel's (the reference arithmetic) for every byte, constant, side and rounding;
- run()'s float I/O engines, now built on the first float run(), give the same outputs as before and are rebuilt
  for a re-planned model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml import numerics as Q
from edgeml.runtime.kernels import ISA
from edgeml.runtime.ops.elementwise import ADD_TABLE_BYTES
from edgeml.runtime.plan import address
from edgeml.runtime.tables import periodic_byte_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"
# the vector bodies this process may run (the ISA path is fixed per process; tests/test_kernel_paths.py forces each)
BODIES = {"avx512vnni": ("avx512", "avx2"), "avx512": ("avx512", "avx2"), "avxvnni": ("avx2",),
          "avx2": ("avx2",)}.get(ISA, ())


def binary_ints(rng, which: str, rounding: int) -> dict:
    s1, s2, so = (float(Q.F32(v)) for v in rng.uniform(0.002, 0.6, 3))
    z1, z2, zo = (int(v) for v in rng.integers(-128, 128, 3))
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2)) if rng.integers(3) == 0 else (-128, 127)
    common = dict(zp1=z1, zp2=z2, out_zp=zo, act_min=lo, act_max=hi, mode=rounding)
    if which == "MUL":
        m, sh = Q.quantize_multiplier(s1 * s2 / so, rounding)
        return dict(common, mult=m, shift=sh)
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = Q.quantize_multiplier(s1 / twice_max, rounding)
    m2, sh2 = Q.quantize_multiplier(s2 / twice_max, rounding)
    mo, sho = Q.quantize_multiplier(twice_max / ((1 << 20) * so), rounding)
    return dict(common, left_shift=20, mult1=m1, shift1=sh1, mult2=m2, shift2=sh2, out_mult=mo, out_shift=sho,
                sign=1 if which == "ADD" else -1)


@pytest.mark.skipif(not BODIES, reason="no vector body on this ISA path")
@pytest.mark.parametrize("which", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("rounding", [0, 1])
def test_periodic_tables_of_the_vector_bodies_equal_the_scalar_kernel(which, rounding):
    rng = np.random.default_rng(15 + rounding)
    kernel = "mul_int8" if which == "MUL" else "add_int8"
    for trial in range(40):
        ints = dict(binary_ints(rng, which, rounding), dims=[1] * 6, strides1=[0] * 6, strides2=[0] * 6)
        period = int(rng.choice([1, 3, 5, 16, 17, 48, 64]))
        constant = rng.integers(-128, 128, period).astype(np.int8)
        first = bool(rng.integers(2))
        scalar = periodic_byte_table(kernel, constant, first, ints, {"tables": 0} if which != "MUL" else {})
        for body in BODIES:
            scratch = np.zeros(ADD_TABLE_BYTES, np.uint8)
            extra = {} if which == "MUL" else {"tables": address(scratch) if body == "avx512" else 0}
            out = np.full(period * 256 + 3, 99, np.int8)
            periodic_byte_table(f"{kernel}_{body}", constant, first, ints, extra, out)
            np.testing.assert_array_equal(out[:period * 256], scalar, err_msg=f"{which} {body} trial {trial}")
            assert (out[period * 256:] == 99).all(), "wrote past the table"


def test_float_run_builds_its_engines_on_first_use_and_after_a_resize():
    path = SHARED / "kws_ref_model.tflite"
    if not path.exists():
        pytest.skip("mlperf_tiny models absent")
    it = edgeml.Interpreter(str(path))
    assert it._float_io is None, "float I/O engines built at load"
    d = it.get_input_details()[0]
    x = np.random.default_rng(0).uniform(-3, 3, d["shape"]).astype(np.float32)
    first = it.run(x)
    assert it._float_io is not None and it._float_io.ready
    np.testing.assert_array_equal(first, edgeml.Interpreter(str(path))._run(x))     # the checked path
    batch = (2,) + tuple(d["shape"][1:])
    it.resize_input(0, batch)
    xs = np.concatenate([x, x])
    both = it.run(xs)
    np.testing.assert_array_equal(both[0], first[0])
    np.testing.assert_array_equal(both[1], first[0])
