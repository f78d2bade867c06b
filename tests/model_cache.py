"""Models converted with TensorFlow once per session and kept in pytest's cache folder between sessions."""
from __future__ import annotations

import hashlib
import os
import importlib.metadata as md
from pathlib import Path
from typing import Callable

import pytest


def cache_key(source: str) -> str:
    """Changes with the file that builds the models or with the TensorFlow version, so a cache never goes stale."""
    h = hashlib.sha256(Path(source).read_bytes())
    for dist in ("tensorflow", "tf_keras"):
        try:
            h.update(md.version(dist).encode())
        except md.PackageNotFoundError:
            h.update(b"?")
    return h.hexdigest()[:16]


class ConvertedModels:
    """Converted .tflite bytes by (spec name, kind): memory, then disk, then `convert(name, kind)`."""

    def __init__(self, directory: Path, convert: Callable[[str, str], bytes]):
        self.directory = directory
        self.convert = convert
        self.memory = {}

    def get(self, name: str, kind: str) -> bytes:
        key = (name, kind)
        if key not in self.memory:
            path = self.directory / f"{name}.{kind}.tflite"
            if not path.exists():
                pytest.importorskip("tensorflow")
                pytest.importorskip("tf_keras")
                tmp = path.with_suffix(f".{os.getpid()}.partial")     # pytest-xdist workers may convert at once
                tmp.write_bytes(self.convert(name, kind))
                tmp.replace(path)
            self.memory[key] = path.read_bytes()
        return self.memory[key]


def converted_models(request, tmp_path_factory, label: str, module) -> ConvertedModels:
    """The session's store for the models of `module` (its SPECS, convert and source file)."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        directory = cache.mkdir(f"edgeml_{label}_{cache_key(module.__file__)}")
    else:
        directory = tmp_path_factory.mktemp(label)
    return ConvertedModels(directory, lambda name, kind: module.convert(module.SPECS[name], kind))
