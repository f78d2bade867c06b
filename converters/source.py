"""Model bytes from what a caller hands a reader: bytes or a path to a regular file of bounded size."""
from __future__ import annotations

import os
import stat

from edgeml.errors import ModelFormatError

MAX_MODEL_BYTES = 1 << 31        # a .tflite flatbuffer cannot address more; a larger file is not a model


def read_model_bytes(model) -> bytes:
    """The bytes of a model given as bytes or a path.  Only regular files are read (a device or a FIFO would never
    end or block), and only up to MAX_MODEL_BYTES; anything else is a ModelFormatError."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = os.fspath(model)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ModelFormatError(f"cannot read model file '{path}': it is not a regular file (a directory, device "
                                   "or pipe cannot hold a model)")
        if info.st_size > MAX_MODEL_BYTES:
            raise ModelFormatError(f"'{path}' has {info.st_size} bytes, more than a model file can have "
                                   f"({MAX_MODEL_BYTES})")
        with open(path, "rb", buffering=0) as f:
            # reads of the size stat gave (a buffered read(MAX_MODEL_BYTES + 1) allocates that much first), on
            # until the end of the file or past the limit
            parts, total = [], 0
            while total <= MAX_MODEL_BYTES:
                chunk = f.read(min(MAX_MODEL_BYTES + 1 - total, max(info.st_size + 1 - total, 1 << 16)))
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
