"""Issue 15, load time: DETECTION_POSTPROCESS's anchors dequantized and checked in one C pass
(load_detection.anchor_values) give the bytes and the verdict of their numpy twin (ops/detection.anchor_values_numpy),
over int8 and float32 anchors, odd counts, zero points and scales from tiny to overflowing, NaN / infinity anywhere,
negative heights or widths in either column and negative centres (allowed)."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_detection
from edgeml.runtime.ops.detection import anchor_values_numpy
from test_load_ops import BAD_ANCHORS, GOOD_ANCHORS


def random_anchors(rng, n, quantized):
    if quantized:
        return rng.integers(-128, 128, (n, 4)).astype(np.int8), float(10.0 ** rng.uniform(-6, 1)), \
            int(rng.integers(-128, 128))
    return rng.uniform(-1, 2, (n, 4)).astype(np.float32), None, 0


def cases():
    rng = np.random.default_rng(26880)
    out = [(d, s, z) for d, s, z in GOOD_ANCHORS] + [(d, s, z) for d, s, z, _ in BAD_ANCHORS]
    for n in (1, 3, 7, 64, 1001):
        for quantized in (True, False):
            out.append(random_anchors(rng, n, quantized))
    data, _, _ = random_anchors(rng, 33, False)
    for k, v in enumerate((np.nan, np.inf, -np.inf, -1e-30, 0.0)):
        bad = data.copy()
        bad[(7 * k) % 33, (k + 2) % 4] = v                  # (a centre or a size, NaN or infinity or negative)
        out.append((bad, None, 0))
    data = np.full((5, 4), 100, np.int8)
    out += [(data, 3.5e38, 0), (data, 1e-45, 0), (np.int8([[0, 0, -1, 5]]), 0.5, 0), (np.int8([[0, 0, 5, -1]]), 0.5, 0)]
    return out


@pytest.mark.parametrize("k", range(len(cases())))
def test_c_anchors_equal_the_numpy_twin(k):
    data, scale, zp = cases()[k]
    quantized = scale is not None
    fast, plain = np.full(data.shape, 7, np.float32), np.full(data.shape, 7, np.float32)
    status = load_detection.anchor_values(data, fast, quantized, zp, scale or 0.0)
    with np.errstate(all="ignore"):
        assert status == anchor_values_numpy(data, plain, quantized, zp, scale)
    assert fast.tobytes() == plain.tobytes()


def test_anchor_values_refuses_mismatched_arrays():
    with pytest.raises(ValueError, match="must both be \\[N, 4\\]"):
        load_detection.anchor_values(np.zeros((3, 4), np.int8), np.zeros((2, 4), np.float32), True, 0, 1.0)
    with pytest.raises(ValueError, match="must both be \\[N, 4\\]"):
        load_detection.anchor_values(np.zeros((3, 4), np.int8), np.zeros((3, 5), np.float32), True, 0, 1.0)
    with pytest.raises(ValueError, match="12 bytes where 48"):
        load_detection.anchor_values(np.zeros((3, 4), np.int8), np.zeros((3, 4), np.float32), False, 0, 1.0)
