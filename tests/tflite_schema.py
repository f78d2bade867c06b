"""TensorFlow's generated TFLite schema module (with its object API) for tests that write or edit .tflite files,
loaded from the installed tensorflow package's file without importing tensorflow itself (a fraction of a second
instead of seconds)."""
from __future__ import annotations

import functools
import importlib.util
import os


@functools.lru_cache(maxsize=1)
def schema():
    """(flatbuffers, the schema module)."""
    import flatbuffers
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tensorflow is not installed")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "lite", "python", "schema_py_generated.py")
    loader = importlib.util.spec_from_file_location("edgeml_tests_tflite_schema", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return flatbuffers, module


def pack(model) -> bytes:
    """A ModelT as .tflite bytes."""
    flatbuffers, _ = schema()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def edit(model_bytes: bytes, change) -> bytes:
    """The model after change(model, fb) edits its object-API form (fb: the schema module)."""
    _, fb = schema()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(bytearray(model_bytes), 0))
    change(model, fb)
    return pack(model)
