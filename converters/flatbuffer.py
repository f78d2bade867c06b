"""A bounds-checked flatbuffer table at a position of a file's bytes, for the options tables the generated
accessors read (converters/tflite.py `_options`); everything else is walked in C by cython_ops/tflite_read.pyx.
A table or vtable outside the file raises IndexError (the reader turns it into ModelFormatError)."""
from __future__ import annotations

import struct

U16, I32 = struct.Struct("<H"), struct.Struct("<i")


class Table:
    """A table at `pos` in `buf`: its vtable's position and size."""
    __slots__ = ("buf", "pos", "vtable", "vtable_size")

    def __init__(self, buf: bytes, pos: int):
        if not 0 <= pos <= len(buf) - 4:
            raise IndexError(f"table at offset {pos} lies outside the {len(buf)}-byte file")
        vtable = pos - I32.unpack_from(buf, pos)[0]
        if not 0 <= vtable <= len(buf) - 4:
            raise IndexError(f"vtable at offset {vtable} lies outside the {len(buf)}-byte file")
        self.buf, self.pos, self.vtable = buf, pos, vtable
        self.vtable_size = U16.unpack_from(buf, vtable)[0]
