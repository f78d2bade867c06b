"""Bounds-checked reads of flatbuffer tables straight from a file's bytes (`struct.unpack_from`, numpy views).

The `tflite` package's generated accessors cost half a dozen Python calls per field, which made reading the
file most of a model's load time; these read a field in one or two.  A read outside the file raises
`struct.error` / `ValueError` / `IndexError` (the reader turns them into `ModelFormatError`), never reads
outside the bytes: positions only grow from a checked table start, and a vtable before the file is refused.
"""
from __future__ import annotations

import struct

import numpy as np

U8, I8, U16, I32, U32, U64, I64, F32 = (struct.Struct(f) for f in ("<B", "<b", "<H", "<i", "<I", "<Q", "<q", "<f"))


class Table:
    """A table at `pos` in `buf`; fields are addressed by their schema index (vtable slot 4 + 2k).  The vtable's
    field offsets are read once, in one unpack."""
    __slots__ = ("buf", "pos", "vtable", "vtable_size", "fields")

    def __init__(self, buf: bytes, pos: int):
        if not 0 <= pos <= len(buf) - 4:
            raise IndexError(f"table at offset {pos} lies outside the {len(buf)}-byte file")
        vtable = pos - I32.unpack_from(buf, pos)[0]
        if not 0 <= vtable <= len(buf) - 4:
            raise IndexError(f"vtable at offset {vtable} lies outside the {len(buf)}-byte file")
        self.buf, self.pos, self.vtable = buf, pos, vtable
        self.vtable_size = size = U16.unpack_from(buf, vtable)[0]
        n = max(size - 3, 0) // 2          # slot 4 + 2k is present when it starts inside the vtable
        reader = VTABLE_READERS.get(n)
        if reader is None:
            reader = VTABLE_READERS[n] = struct.Struct(f"<{n}H")
        self.fields = reader.unpack_from(buf, vtable + 4)

    def offset(self, field: int) -> int:
        """The field's offset inside the table, 0 when absent."""
        fields = self.fields
        return fields[field] if field < len(fields) else 0

    def scalar(self, field: int, kind: struct.Struct, default=0):
        fields = self.fields
        rel = fields[field] if field < len(fields) else 0
        return kind.unpack_from(self.buf, self.pos + rel)[0] if rel else default

    def _target(self, field: int):
        """Where the field's uoffset points, or None."""
        fields = self.fields
        rel = fields[field] if field < len(fields) else 0
        if not rel:
            return None
        at = self.pos + rel
        return at + U32.unpack_from(self.buf, at)[0]

    def table(self, field: int):
        at = self._target(field)
        return None if at is None else Table(self.buf, at)

    def vector(self, field: int) -> tuple[int, int]:
        """(position of the first element, element count); (0, 0) when absent."""
        at = self._target(field)
        if at is None:
            return 0, 0
        return at + 4, U32.unpack_from(self.buf, at)[0]

    def string(self, field: int):
        start, n = self.vector(field)
        if start and start + n > len(self.buf):
            raise IndexError(f"string of {n} bytes at offset {start} runs past the {len(self.buf)}-byte file")
        return bytes(self.buf[start:start + n]) if start else None


VTABLE_READERS = {}        # field count -> struct reading that many uint16 offsets


def table_in_vector(buf: bytes, start: int, i: int) -> Table:
    """Element i of a vector of tables starting at `start`."""
    at = start + 4 * i
    return Table(buf, at + U32.unpack_from(buf, at)[0])


def array(buf: bytes, start: int, n: int, dtype: str) -> np.ndarray:
    """A read-only numpy view of n little-endian elements at `start` (ValueError past the end)."""
    return np.frombuffer(buf, dtype=dtype, count=n, offset=start)
