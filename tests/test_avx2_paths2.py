"""The AVX2 bodies of issue 18's second round under each forced ISA path in subprocesses, against expectations
written from the formulas: the 256-entry byte table lookup (em_lut.h's XOR-chain body: every byte value at every
vector position, lengths around the 32- and 64-byte steps, tables whose slices differ in one byte, in place)."""
import pytest

from test_kernel_paths import PATHS, run_on_path

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

@pytest.mark.parametrize("forced", PATHS)
def test_byte_table_lookup_exact_on_every_path(forced):
    assert run_on_path(forced, LUT_CHECK, 11) == ["kernels", "lut_int8"]
