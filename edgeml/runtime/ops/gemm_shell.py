"""The runtime's pieces cython_ops/load_gemm.pyx builds int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED steps with
(its one-call prepares: ops/conv.py and ops/fully_connected.py call them; cython_ops imports nothing from edgeml),
handed in once at import."""
from __future__ import annotations

from typing import Optional

import numpy as np

from cython_ops import load_gemm
from edgeml.errors import ModelFormatError
from edgeml.ir import Op
from edgeml.runtime import packing_depthwise, packing_gemm, requant
from edgeml.runtime.arena import ALIGN
from edgeml.runtime.load_profile import ACTIVE
from edgeml.runtime.ops import conv_winograd
from edgeml.runtime.ops.common import IM2COL_ROWS
from edgeml.runtime.ops.sparse_gemm import fully_connected_as_conv, sparse_candidate, sparse_step
from edgeml.runtime.packing_sparse import BLOCK_COLS, BLOCK_DEPTH
from edgeml.runtime.packing import AVX2_BIG_CHUNK_BYTES, AVX2_BIG_WEIGHT_BYTES, VNNI_CHUNK_BYTES, VNNI_SLACK
from edgeml.runtime.plan import KEEP_ALIGN, KEEP_POOL_BYTES, KEEP_POOL_LARGEST, Step

# the geometry sparse_candidate reads: a FULLY_CONNECTED runs on the sparse kernel as a 1x1 conv
AS_1X1_CONV = dict(kh=1, kw=1, sh=1, sw=1, dh=1, dw=1, pad_top=0, pad_left=0)
NO_FLOATS = dict(act_min=0.0, act_max=0.0)      # the int8 kernels clamp in integers
DEPTHWISE_AS_CONV_MIN = 4     # a one-channel depthwise with this many outputs runs as the CONV_2D it equals


def overflow_error(op: Op, message: Optional[str] = None) -> ModelFormatError:
    """The error of a bias and weights past the int32 accumulator: pack_gemm's words, or the depthwise packer's."""
    if message is not None:
        return ModelFormatError(message)
    return ModelFormatError(f"{op.describe()}: bias and weights overflow the int32 accumulator")


load_gemm.use_runtime(
    Step, sparse_candidate, sparse_step, fully_connected_as_conv, requant.ColumnSource, requant.ColumnRequant,
    packing_gemm.pack_gemm, packing_depthwise, overflow_error, ACTIVE, AS_1X1_CONV, np.dtype(np.int32),
    np.dtype(np.float32), np.dtype(np.float64), NO_FLOATS,
    dict(im2col_rows=IM2COL_ROWS, vnni_chunk_bytes=VNNI_CHUNK_BYTES, vnni_slack=VNNI_SLACK, align=ALIGN,
         avx2_big_weight_bytes=AVX2_BIG_WEIGHT_BYTES, avx2_big_chunk_bytes=AVX2_BIG_CHUNK_BYTES,
         winograd_min_ic=conv_winograd.WINOGRAD_MIN_IC, winograd_max_ic=conv_winograd.WINOGRAD_MAX_IC,
         depthwise_as_conv_min=DEPTHWISE_AS_CONV_MIN, requant_float=requant.REQUANT_FLOAT,
         requant_double_scale=requant.REQUANT_DOUBLE_SCALE, uint8=np.uint8, empty=np.empty, ndarray=np.ndarray,
         int16=np.dtype(np.int16), block_cols=BLOCK_COLS, block_depth=BLOCK_DEPTH, keep_align=KEEP_ALIGN,
         keep_pool_bytes=KEEP_POOL_BYTES, keep_pool_largest=KEEP_POOL_LARGEST))

int8_conv_step = load_gemm.int8_conv_step
int8_fully_connected_step = load_gemm.int8_fully_connected_step
