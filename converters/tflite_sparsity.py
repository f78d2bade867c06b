"""Sparse .tflite tensors (the `sparsity` parameters EXPERIMENTAL_SPARSITY writes: traversal order, block map, and
per traversed dimension DENSE or SPARSE_CSR metadata), validated in full and expanded to the dense array.

The stored values are visited as LiteRT's FormatConverter::SparseToDense visits them: dimension metadata k
describes the k-th dimension of the traversal order over the expanded shape (each blocked dimension divided by its
block size, then one dimension per block); a DENSE level runs over its size, a SPARSE_CSR level over the indices
of its parent position's segment.  Every count, size, index and segment is checked before anything is written:
a file whose metadata would make LiteRT read or write outside its arrays is a ModelFormatError here.
"""
from __future__ import annotations

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError

DENSE, SPARSE_CSR = 0, 1
INDEX_TYPES = {1: np.dtype("<i4"), 2: np.dtype("<u2"), 3: np.dtype("<u1")}   # SparseIndexVector union
TENSOR_SPARSITY = 16               # vtable offsets: Tensor.sparsity (field 6)
TRAVERSAL_ORDER, BLOCK_MAP, DIM_METADATA = 4, 6, 8
FORMAT, DENSE_SIZE, SEGMENTS_TYPE, SEGMENTS, INDICES_TYPE, INDICES = 4, 6, 8, 10, 12, 14
VALUES = 4                         # Int32Vector / Uint16Vector / Uint8Vector.values


class _Table:
    """A flatbuffer table at `pos`, read with bounds checks against the file."""

    def __init__(self, buf: bytes, pos: int, what: str):
        if not 0 <= pos <= len(buf) - 4:
            raise ModelFormatError(f"{what}: table at offset {pos} lies outside the {len(buf)}-byte file")
        self.buf, self.pos, self.what = buf, pos, what
        vtable = pos - int.from_bytes(buf[pos:pos + 4], "little", signed=True)
        if not 0 <= vtable <= len(buf) - 4:
            raise ModelFormatError(f"{what}: vtable at offset {vtable} lies outside the file")
        self.vtable = vtable
        self.vtable_size = int.from_bytes(buf[vtable:vtable + 2], "little")
        if vtable + self.vtable_size > len(buf):
            raise ModelFormatError(f"{what}: vtable runs past the end of the file")

    def field(self, offset: int) -> int:
        """The field's position in the file, 0 when absent."""
        if offset >= self.vtable_size:
            return 0
        rel = int.from_bytes(self.buf[self.vtable + offset:self.vtable + offset + 2], "little")
        if rel and self.pos + rel > len(self.buf) - 1:
            raise ModelFormatError(f"{self.what}: field at offset {self.pos + rel} lies outside the file")
        return self.pos + rel if rel else 0

    def scalar(self, offset: int, size: int, signed: bool = False, default: int = 0) -> int:
        at = self.field(offset)
        if not at:
            return default
        if at + size > len(self.buf):
            raise ModelFormatError(f"{self.what}: field at offset {at} runs past the end of the file")
        return int.from_bytes(self.buf[at:at + size], "little", signed=signed)

    def target(self, offset: int):
        """Position a uoffset field points to, or None."""
        at = self.field(offset)
        if not at:
            return None
        if at + 4 > len(self.buf):
            raise ModelFormatError(f"{self.what}: offset field at {at} runs past the end of the file")
        return at + int.from_bytes(self.buf[at:at + 4], "little")

    def vector(self, offset: int, dtype: np.dtype, what: str) -> np.ndarray:
        start = self.target(offset)
        if start is None:
            return np.zeros(0, dtype)
        if start + 4 > len(self.buf):
            raise ModelFormatError(f"{what}: vector length at offset {start} lies outside the file")
        n = int.from_bytes(self.buf[start:start + 4], "little")
        if start + 4 + n * dtype.itemsize > len(self.buf):
            raise ModelFormatError(f"{what}: {n} entries at offset {start + 4} run past the end of the "
                                   f"{len(self.buf)}-byte file")
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=start + 4)

    def tables(self, offset: int, what: str) -> list:
        positions = self.vector(offset, np.dtype("<u4"), what)
        start = self.target(offset) + 4 if len(positions) else 0
        return [_Table(self.buf, start + 4 * k + int(rel), f"{what} {k}") for k, rel in enumerate(positions)]


def _index_array(meta: _Table, type_offset: int, offset: int, what: str) -> np.ndarray:
    kind = meta.scalar(type_offset, 1)
    if kind not in INDEX_TYPES:
        raise ModelFormatError(f"{what}: index vector type {kind} (expected int32, uint16 or uint8)")
    pos = meta.target(offset)
    if pos is None:
        raise ModelFormatError(f"{what} is missing")
    return _Table(meta.buf, pos, what).vector(VALUES, INDEX_TYPES[kind], what).astype(np.int64)


def sparse_values(tensor_pos: int, buf: bytes, desc: str, shape: tuple, dtype: np.dtype, raw):
    """The dense array of a tensor stored sparse, or None when the tensor has no sparsity parameters."""
    tensor = _Table(buf, tensor_pos, desc)
    pos = tensor.target(TENSOR_SPARSITY)
    if pos is None:
        return None
    what = f"{desc} sparsity"
    sp = _Table(buf, pos, what)
    order = [int(v) for v in sp.vector(TRAVERSAL_ORDER, np.dtype("<i4"), f"{what} traversal_order")]
    block_map = [int(v) for v in sp.vector(BLOCK_MAP, np.dtype("<i4"), f"{what} block_map")]
    levels = sp.tables(DIM_METADATA, f"{what} dim_metadata")
    if raw is None:
        raise ModelFormatError(f"{desc}: sparse tensor without stored values")
    if dtype.kind not in "iuf":
        raise UnsupportedOpError(f"{desc}: sparse {dtype} tensors are not supported")
    rank, blocks = len(shape), len(block_map)
    if len(order) != rank + blocks or len(levels) != rank + blocks:
        raise ModelFormatError(f"{what}: {len(order)} traversal entries and {len(levels)} dimension metadata for "
                               f"rank {rank} with {blocks} block dimensions (both must be {rank + blocks})")
    if sorted(order[:rank]) != list(range(rank)) or order[rank:] != list(range(rank, rank + blocks)):
        raise ModelFormatError(f"{what}: traversal_order {order} must order the {rank} dimensions, then list the "
                               "block dimensions in block_map order")
    if any(not 0 <= d < rank for d in block_map) or block_map != sorted(set(block_map)):
        raise ModelFormatError(f"{what}: block_map {block_map} must hold increasing dimensions of rank {rank}")

    formats = [meta.scalar(FORMAT, 1) for meta in levels]
    dense_sizes = [meta.scalar(DENSE_SIZE, 4, signed=True) for meta in levels]
    if any(f not in (DENSE, SPARSE_CSR) for f in formats):
        raise ModelFormatError(f"{what}: dimension formats {formats} (0 DENSE, 1 SPARSE_CSR)")
    block_size = []
    for b, d in enumerate(block_map):
        size = dense_sizes[rank + b]
        if formats[rank + b] != DENSE or size < 1 or shape[d] % size:
            raise ModelFormatError(f"{what}: block {b} of dimension {d} (size {shape[d]}) must be DENSE with a "
                                   f"size dividing it, got format {formats[rank + b]} size {size}")
        block_size.append(size)
    expanded = [shape[d] // block_size[block_map.index(d)] if d in block_map else shape[d] for d in range(rank)]
    expanded += block_size

    coords, positions = [], 1          # per level so far: the coordinate of every position
    for level, (fmt, meta) in enumerate(zip(formats, levels)):
        size = expanded[order[level]]
        if fmt == DENSE:
            if dense_sizes[level] != size:
                raise ModelFormatError(f"{what}: dimension {level} is DENSE of size {dense_sizes[level]}, the "
                                       f"traversed dimension has {size}")
            coords = [np.repeat(c, size) for c in coords] + [np.tile(np.arange(size, dtype=np.int64), positions)]
            positions *= size
            continue
        segments = _index_array(meta, SEGMENTS_TYPE, SEGMENTS, f"{what} dimension {level} array_segments")
        indices = _index_array(meta, INDICES_TYPE, INDICES, f"{what} dimension {level} array_indices")
        if len(segments) != positions + 1 or segments[0] != 0 or segments[-1] != len(indices):
            raise ModelFormatError(f"{what}: dimension {level} has {len(segments)} segment bounds for {positions} "
                                   f"positions and {len(indices)} indices (needs {positions + 1}, from 0 to "
                                   f"{len(indices)})")
        counts = np.diff(segments)
        if np.any(counts < 0):
            raise ModelFormatError(f"{what}: dimension {level} segment bounds decrease")
        if len(indices) and (indices.min() < 0 or indices.max() >= size):
            raise ModelFormatError(f"{what}: dimension {level} index outside [0, {size})")
        starts = np.repeat(segments[:-1], counts)
        later = np.arange(len(indices)) > starts
        if np.any(indices[1:][later[1:]] <= indices[:-1][later[1:]]):
            raise ModelFormatError(f"{what}: dimension {level} indices are not increasing within a segment")
        coords = [np.repeat(c, counts) for c in coords] + [indices]
        positions = len(indices)

    values = np.frombuffer(raw, dtype=dtype.newbyteorder("<")) if len(raw) % dtype.itemsize == 0 else None
    if values is None or len(values) != positions:
        raise ModelFormatError(f"{what}: the metadata addresses {positions} values, the buffer holds "
                               f"{len(raw)} bytes of {dtype}")
    where = [None] * rank
    for level in range(rank):
        where[order[level]] = coords[level]
    for b, d in enumerate(block_map):
        where[d] = where[d] * block_size[b] + coords[rank + b]
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype)
    if positions:
        dense[np.ravel_multi_index(where, shape)] = values
    return dense.reshape(shape)
