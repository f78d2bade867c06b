"""Coverage-guided fuzzing of the model loaders + invoke with atheris (libFuzzer); see README "Fuzzing".

    python tests/fuzz/fuzz_loaders.py tflite CORPUS_DIR [libFuzzer flags, e.g. -runs=1000000 -max_total_time=600]
    python tests/fuzz/fuzz_loaders.py onnx CORPUS_DIR ...

An empty CORPUS_DIR is first filled with the seeds of tests/fuzz/seeds.py (small valid models).

A finding (an exception other than EdgeMLError, a crash, a hang past -timeout) stops the run and leaves the input
in crash-* / timeout-*; add it to tests/fuzz/regressions/<format>/ once fixed, where the default test run replays it.
"""
from __future__ import annotations

import os
import sys

import atheris

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]

with atheris.instrument_imports(include=["edgeml", "converters", "tflite"]):
    import converters.onnx  # noqa: F401  (the loaders are imported here so that they are instrumented)
    import converters.tflite  # noqa: F401
    import edgeml.runtime  # noqa: F401
    from tests.fuzz import harness
from tests.fuzz import seeds  # noqa: E402


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("tflite", "onnx"):
        sys.exit(__doc__)
    fmt = sys.argv[1]
    target = harness.run_model if fmt == "tflite" else harness.run_onnx_bytes
    argv = [sys.argv[0]] + sys.argv[2:]
    folders = [a for a in argv[1:] if not a.startswith("-")]
    if folders and (not os.path.isdir(folders[0]) or not os.listdir(folders[0])):
        seeds.write_seeds(fmt, __import__("pathlib").Path(folders[0]))
    if not any(a.startswith("-timeout") for a in argv):
        argv.append("-timeout=20")
    if not any(a.startswith("-rss_limit_mb") for a in argv):
        argv.append("-rss_limit_mb=4096")
    atheris.Setup(argv, lambda data: target(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
