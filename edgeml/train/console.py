"""What `edgeml train` shows on the terminal: one line per stage with its elapsed time, a progress bar for long
loops, the final summary; and what it hides: TensorFlow's C++ / absl / CUDA / XNNPACK log lines and Python
deprecation warnings, which are written to file descriptor 2 by native code and cannot be silenced otherwise.

Verbosity (TrainConfig.verbose, the CLI flags):
  0  nothing is printed (the Python API's silent mode);
  1  stage lines and the summary (`--quiet`);
  2  also Keras's per-epoch progress and the evaluation bar (the default);
  3  also everything TensorFlow writes to stderr (`--verbose`).
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time

SHOW_NATIVE_LOGS_ENV = "EDGEML_TF_LOGS"        # "1": do not capture TensorFlow's stderr (set by --verbose)
STAGES = ("train", "optimize", "convert", "evaluate", "export")
BAR_WIDTH = 28


def native_logs_shown() -> bool:
    return os.environ.get(SHOW_NATIVE_LOGS_ENV, "") not in ("", "0")


@contextlib.contextmanager
def captured_stderr(enabled: bool = True):
    """Points file descriptor 2 at a temporary file for the duration (C++ libraries write there directly); yields
    a function that returns what was captured so far.  A no-op when disabled or when native logs are shown."""
    if not enabled or native_logs_shown():
        yield lambda: ""
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)

        def read() -> str:
            sys.stderr.flush()
            sink.flush()
            sink.seek(0)
            return sink.read().decode("utf-8", "replace")
        try:
            yield read
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class ProgressBar:
    """`label [#####.....] 52% 140/270` redrawn in place on a terminal; nothing on a pipe or log file."""

    def __init__(self, stream, label: str, total: int, enabled: bool):
        self.stream, self.label, self.total = stream, label, max(1, int(total))
        self.enabled = enabled
        self.done = 0
        self._last = 0.0

    def update(self, step: int = 1, label: str | None = None):
        self.done = min(self.total, self.done + step)
        if label is not None:
            self.label = label
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or self.done == self.total):
            self._last = now
            frac = self.done / self.total
            filled = int(round(frac * BAR_WIDTH))
            self.stream.write(f"\r      {self.label[:28]:<28} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                              f"{100 * frac:3.0f}% {self.done}/{self.total}\x1b[K")
            self.stream.flush()

    def close(self):
        if self.enabled and self._last:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class Console:
    """Stage lines, bars and the summary at a verbosity; keeps every line it printed in `lines`."""

    def __init__(self, verbose: int = 2, stream=None):
        self.verbose = int(verbose)
        self.stream = sys.stdout if stream is None else stream
        self.lines: list[str] = []
        self._stage_index = 0

    @property
    def interactive(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def say(self, message: str, level: int = 1):
        self.lines.append(message)
        if self.verbose >= level:
            print(message, file=self.stream, flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, what: str = ""):
        """`[2/5] optimize: what` when the stage starts, `      optimize done in 3.1 s: detail` when it ends; the
        block sets the detail through the yielded dict's "detail" key."""
        self._stage_index = STAGES.index(name) + 1 if name in STAGES else self._stage_index + 1
        self.say(f"[{self._stage_index}/{len(STAGES)}] {name}" + (f": {what}" if what else ""))
        info = {"detail": ""}
        start = time.monotonic()
        yield info
        elapsed = time.monotonic() - start
        self.say(f"      {name} done in {elapsed:.1f} s" + (f": {info['detail']}" if info["detail"] else ""))

    def skip(self, name: str, why: str):
        self._stage_index = STAGES.index(name) + 1 if name in STAGES else self._stage_index + 1
        self.say(f"[{self._stage_index}/{len(STAGES)}] {name}: skipped ({why})")

    def progress(self, label: str, total: int) -> ProgressBar:
        return ProgressBar(self.stream, label, total, enabled=self.verbose >= 2 and self.interactive)

    def keras_verbose(self) -> int:
        """Keras's fit verbosity: a bar per epoch on a terminal, a line per epoch in a log, nothing when quiet."""
        if self.verbose < 2:
            return 0
        return 1 if self.interactive else 2
