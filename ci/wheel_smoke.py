"""Runs each model given on one seeded input and prints its name and the CRC-32 of its output: the wheel scripts
compare an installed wheel's lines with the source tree's.  --float-exact: the reference's float order (for a
comparison across CPUs whose default float kernels differ)."""
import sys
import zlib

import numpy as np

import edgeml

exact = "--float-exact" in sys.argv
for path in [a for a in sys.argv[1:] if a != "--float-exact"]:
    m = edgeml.Interpreter(path, float_exact=exact)
    d = m.get_input_details()[0]
    rng = np.random.default_rng(0)
    x = (rng.integers(-128, 128, size=tuple(d["shape"]), dtype=np.int8) if d["dtype"] == np.int8
         else rng.standard_normal(tuple(d["shape"])).astype(np.float32))
    m.set_input(x)
    m.invoke()
    print(path.rsplit("/", 1)[-1], zlib.crc32(m.get_output().tobytes()))
