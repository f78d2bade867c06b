"""Block-sparse packing of int8 weights [N][K] for em_sparse.h: blocks of 16 output channels x 4 consecutive K
values, only those holding a nonzero weight stored, listed per 16-column group."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cython_ops import load_pack
from edgeml.runtime.plan import Ctx

BLOCK_COLS, BLOCK_DEPTH = 16, 4       # one zero block = one vpdpbusd skipped (16 int32 lanes x 4 bytes)


def block_mask(w2: np.ndarray) -> np.ndarray:
    """[ceil(N / 16)][ceil(K / 4)] bool: which blocks hold a nonzero weight (padding counts as zero)."""
    n, k = w2.shape
    groups, depth = -(-n // BLOCK_COLS), -(-k // BLOCK_DEPTH)
    padded = np.zeros((groups * BLOCK_COLS, depth * BLOCK_DEPTH), bool)
    padded[:n, :k] = w2 != 0
    return padded.reshape(groups, BLOCK_COLS, depth, BLOCK_DEPTH).any(axis=(1, 3))


def block_density(w2: np.ndarray, segment: int = 0) -> float:
    """The fraction of 16x4 blocks that hold a nonzero weight (1.0 for an empty matrix); segment > 0: of w2 with
    each run of `segment` K values zero-padded to a multiple of 4 (window_rows)."""
    if w2.dtype == np.int8 and w2.ndim == 2:      # one C pass, no mask
        nonzero, blocks = load_pack.count_nonzero_blocks_s8(w2, BLOCK_COLS, BLOCK_DEPTH, segment)
        return nonzero / blocks if blocks else 1.0
    mask = block_mask(window_rows(w2, segment) if segment else w2)
    return float(mask.mean()) if mask.size else 1.0


def window_rows(w2: np.ndarray, segment: int) -> np.ndarray:
    """[N][K] -> [N][K / segment * ceil(segment / 4) * 4]: each run of `segment` K values (a conv's window row,
    KW * IC) zero-padded to a multiple of 4, as the implicit-GEMM convs read their weights."""
    n, k = w2.shape
    span4 = -(-segment // 4) * 4
    out = np.zeros((n, k // segment, span4), w2.dtype)
    out[:, :, :segment] = w2.reshape(n, k // segment, segment)
    return out.reshape(n, -1)


@dataclass
class SparsePacked:
    group_start: np.ndarray    # int32 [groups + 1]: block range of each 16-column group
    block_k: np.ndarray        # int32 [blocks]: each block's first K index
    weights: np.ndarray        # int8 [blocks][16][4] (VNNI), int16 [blocks][2][16][2] (AVX2), int8 [blocks][4][16]
    density: float


def selected_blocks(blocks: np.ndarray, mask: np.ndarray) -> tuple:
    """The numpy form of load_pack.nonzero_blocks: (int32 start of each group's blocks, K-block index of each
    chosen block, the chosen blocks [chosen][16][4]) for blocks [g][kb][16][4] where mask [g][kb] holds."""
    g_idx, kb_idx = np.nonzero(mask)                   # row-major: blocks of a group together, K ascending
    start = np.zeros(mask.shape[0] + 1, np.int32)
    start[1:] = np.cumsum(mask.sum(axis=1))
    return start, kb_idx.astype(np.int64), blocks[g_idx, kb_idx]


def sparse_pack(ctx: Ctx, w2: np.ndarray, layout: str, offset: Callable = None) -> SparsePacked:
    """The packed form em_sparse.h reads; layout: "vnni" int8 [block][16][4], "avx2" int16 [block][pair][16][2],
    "portable" int8 [block][4][16]; offset: the kernel's block_k for an array of K indices (default: the indices)."""
    n, k = w2.shape
    groups, depth = -(-n // BLOCK_COLS), -(-k // BLOCK_DEPTH)
    if w2.dtype == np.int8:      # every block in one C pass ([g][kb][16][4], zero-padded), then the nonzero ones
        blocks = np.empty((groups, depth, BLOCK_COLS, BLOCK_DEPTH), np.int8)
        load_pack.pack_vnni_s8(w2, blocks, False)
        start, kb_idx, chosen = load_pack.nonzero_blocks(blocks)
        density = len(kb_idx) / (groups * depth) if groups * depth else 1.0
    else:
        mask = block_mask(w2)
        padded = np.zeros((groups * BLOCK_COLS, depth * BLOCK_DEPTH), np.int8)
        padded[:n, :k] = w2
        blocks = padded.reshape(groups, BLOCK_COLS, depth, BLOCK_DEPTH).transpose(0, 2, 1, 3)   # [g][kb][16][4]
        start, kb_idx, chosen = selected_blocks(blocks, mask)
        density = float(mask.mean()) if mask.size else 1.0
    if layout == "avx2":
        chosen = chosen.astype(np.int16).reshape(-1, BLOCK_COLS, 2, 2).transpose(0, 2, 1, 3)
    elif layout == "portable":      # 16 columns contiguous per K value: the C loop vectorizes
        chosen = chosen.transpose(0, 2, 1)
    k_first = kb_idx.astype(np.int64) * BLOCK_DEPTH
    block_k = (k_first if offset is None else offset(k_first)).astype(np.int32)
    if not len(block_k):     # an all-zero matrix: the kernels read no block, but every pointer stays valid
        block_k = np.zeros(1, np.int32)
        chosen = np.zeros((1,) + chosen.shape[1:], chosen.dtype)
    return SparsePacked(ctx.keep_array(start), ctx.keep_array(block_k), ctx.keep_array(chosen), density)
