"""The output folder of `edgeml train`: a run works in a hidden folder beside `--out` and renames it into place only
when everything succeeded, so a failed or killed run never leaves a half-written output, and a previous output
stays whole until the new one is complete."""
from __future__ import annotations

import os
import shutil
import tempfile
import time

from edgeml.errors import TrainingError

OUTPUT_MARKER = ".edgeml-output"        # in every folder `train` writes: a later run may replace such a folder
WORK_PREFIX = ".edgeml-train-"          # a run works in <parent of --out>/.edgeml-train-XXXX, then renames it
OLD_PREFIX = ".edgeml-old-"             # a replaced output, while the new one is moved into place
OWNER_FILE = "owner.pid"                # the process working in a work folder
STALE_SECONDS = 24 * 3600               # a work folder without an owner file is stale after this long


def check_output_folder(out: str, overwrite: bool) -> None:
    """Refuses a non-empty `out` that edgeml did not write, unless `overwrite`."""
    if os.path.isdir(out) and os.listdir(out) and not overwrite \
            and not os.path.isfile(os.path.join(out, OUTPUT_MARKER)):
        raise TrainingError(f"output folder '{out}' is not empty and was not written by edgeml train; choose "
                            "another --out, or pass --overwrite (overwrite=True) to replace it")


def open_work_folder(out: str) -> tuple[str, str]:
    """(work folder, parent): a fresh hidden folder beside `out`, owned by this process."""
    parent = os.path.dirname(os.path.abspath(out)) or "."
    os.makedirs(parent, exist_ok=True)
    remove_stale_work(parent, os.path.abspath(out))
    work = tempfile.mkdtemp(prefix=WORK_PREFIX, dir=parent)
    with open(os.path.join(work, OWNER_FILE), "w") as f:
        f.write(str(os.getpid()))
    return work, parent


def finish_work_folder(work: str, out: str, parent: str) -> None:
    """Marks the work folder as an edgeml output and renames it to `out`."""
    shutil.rmtree(os.path.join(work, "checkpoints"), ignore_errors=True)
    os.remove(os.path.join(work, OWNER_FILE))
    with open(os.path.join(work, OUTPUT_MARKER), "w") as f:
        f.write("written by edgeml train; a later run with the same --out may replace this folder\n")
    move_into_place(work, os.path.abspath(out), parent)


def move_into_place(work: str, out: str, parent: str) -> None:
    """Renames the finished work folder to `out`; a previous output stays whole until the new one is in place."""
    if not os.path.isdir(out):
        os.replace(work, out)
        return
    old = tempfile.mkdtemp(prefix=OLD_PREFIX, dir=parent)
    os.replace(out, os.path.join(old, "output"))
    os.replace(work, out)
    shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:        # another user's live process
        return True
    return True


def remove_stale_work(parent: str, out: str) -> None:
    """Removes what killed runs left in `parent`: work folders whose owner process is gone (or, without an owner
    file, older than STALE_SECONDS), and replaced outputs once `out` exists again."""
    for name in os.listdir(parent):
        path = os.path.join(parent, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        if name.startswith(OLD_PREFIX) and os.path.isdir(out):
            shutil.rmtree(path, ignore_errors=True)
        elif name.startswith(WORK_PREFIX):
            try:
                with open(os.path.join(path, OWNER_FILE)) as f:
                    stale = not _alive(int(f.read().strip()))
            except (OSError, ValueError):
                stale = time.time() - os.path.getmtime(path) > STALE_SECONDS
            if stale:
                shutil.rmtree(path, ignore_errors=True)
