"""Where each kernel of the runtime lives in C: kernel name -> (header, function), read from the cython_ops
modules' declarations (the `cdef extern from "x.h"` blocks and their KERNELS tables), so the generated C calls the
very functions the Engine calls."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import cython_ops

from edgeml.errors import EdgeMLError

SOURCE_DIR = Path(cython_ops.__file__).resolve().parent
INCLUDE_DIR = SOURCE_DIR / "include"
EXTERN = re.compile(r'cdef extern from "([^"]+)"')
DECLARATION = re.compile(r"\s+void (em_\w+)\(const em_params\*\)")
TABLE_ROW = re.compile(r'"(\w+)":\s*<uintptr_t>&(em_\w+)')


@lru_cache(maxsize=1)
def kernel_functions() -> dict:
    """Kernel name -> (header file name, C function name), for every kernel of every cython_ops module."""
    found = {}
    for module in sorted(SOURCE_DIR.glob("*.pyx")):
        text = module.read_text()
        header_of, header = {}, None
        for line in text.splitlines():
            m = EXTERN.match(line)
            if m:
                header = m.group(1)
                continue
            m = DECLARATION.match(line)
            if m and header:
                header_of[m.group(1)] = header
        for name, function in TABLE_ROW.findall(text):
            if function in header_of:
                found[name] = (header_of[function], function)
    if not found:
        raise EdgeMLError(f"edgeml compile needs the kernel sources (cython_ops/*.pyx and include/*.h), which are "
                          f"not in {SOURCE_DIR}")
    return found


def headers() -> list:
    """Every kernel header (they include one another, so all of them are copied)."""
    return sorted(INCLUDE_DIR.glob("*.h"))
