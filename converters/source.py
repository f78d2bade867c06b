"""Model bytes from what a caller hands a reader: bytes or a path."""
from __future__ import annotations

import os

from edgeml.errors import ModelFormatError


def read_model_bytes(model) -> bytes:
    """The bytes of a model given as bytes or a path; an unreadable path is a ModelFormatError."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = os.fspath(model)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ModelFormatError(f"cannot read model file '{path}': {exc.strerror or exc}") from exc
