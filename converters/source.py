"""Model bytes from what a caller hands a reader: bytes or a path to a regular file of bounded size."""
from __future__ import annotations

import os
import stat

import numpy as np

from edgeml.errors import ModelFormatError
from edgeml.pages import large_bytes

MAX_MODEL_BYTES = 1 << 31        # a .tflite flatbuffer cannot address more; a larger file is not a model
READV = getattr(os, "readv", None)       # (POSIX; elsewhere the file object's readinto)
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def new_bytes(n: int) -> np.ndarray:
    """n writable bytes (not the file mapped: a file truncated while mapped would kill the process).  A large file
    gets huge pages, kept for the next load once its interpreter is gone (edgeml/pages.py: one fault per 2 MiB,
    and none on later loads, where the heap faults in every 4 KiB page again whenever glibc has trimmed it); a
    small one a heap block."""
    held = large_bytes(n)
    return np.empty(n, np.uint8) if held is None else held


def _regular_file_size(path: str) -> int:
    """The size of the regular file at `path`; a device, FIFO, directory or oversized file is a ModelFormatError."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ModelFormatError(f"cannot read model file '{path}': it is not a regular file (a directory, device "
                               "or pipe cannot hold a model)")
    if info.st_size > MAX_MODEL_BYTES:
        raise ModelFormatError(f"'{path}' has {info.st_size} bytes, more than a model file can have "
                               f"({MAX_MODEL_BYTES})")
    return info.st_size


def read_model_bytes(model) -> bytes:
    """The bytes of a model given as bytes or a path.  Only regular files are read (a device or a FIFO would never
    end or block), and only up to MAX_MODEL_BYTES; anything else is a ModelFormatError."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = os.fspath(model)
    try:
        size = _regular_file_size(path)
        with open(path, "rb", buffering=0) as f:
            # reads of the size stat gave (a buffered read(MAX_MODEL_BYTES + 1) allocates that much first), on
            # until the end of the file or past the limit
            parts, total = [], 0
            while total <= MAX_MODEL_BYTES:
                chunk = f.read(min(MAX_MODEL_BYTES + 1 - total, max(size + 1 - total, 1 << 16)))
                if not chunk:
                    break
                parts.append(chunk)
                total += len(chunk)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
    except OSError as exc:
        raise ModelFormatError(f"cannot read model file '{path}': {exc.strerror or exc}") from exc
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFormatError(f"'{path}' grew past {MAX_MODEL_BYTES} bytes while it was read")
    return data


def read_model_buffer(model) -> tuple:
    """(read-only buffer of the model's bytes, the writable array holding them or None), with read_model_bytes'
    checks.  A file is read into an array of its own, which the reader may rewrite before anything else sees it
    (uint8 weights flipped to int8 in place instead of copied); bytes a caller handed in are never written."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), None
    path = os.fspath(model)
    try:
        size = _regular_file_size(path)
        held = new_bytes(size + 1)      # one byte more: a file that grew since stat shows as a full array
        total = 0
        view = memoryview(held)
        if READV is None:
            with open(path, "rb", buffering=0) as f:
                while total <= size:
                    n = f.readinto(view[total:])
                    if not n:
                        break
                    total += n
        else:       # a descriptor read straight: no file object (open() adds an fstat and a Python object)
            fd = os.open(path, OPEN_FLAGS)
            try:
                while total <= size:
                    n = READV(fd, [view[total:]])
                    total += n
                    if not n or total == size:      # (the size stat gave, one byte short of the request: the end
                        break                       # of a regular file; no further read to see it)
            finally:
                os.close(fd)
    except OSError as exc:
        raise ModelFormatError(f"cannot read model file '{path}': {exc.strerror or exc}") from exc
    if total > size:            # it grew while read: the chunked read bounds it
        return read_model_bytes(path), None
    held = held[:total]
    return memoryview(held).toreadonly(), held
