"""`edgeml compile --report`: flash (code + weights + parameters) and RAM (arena + static data + stack) of the
generated C, measured on the object file a C compiler makes of NAME.c, beside TFLite Micro's arena for the same
model (tflite_micro's recording allocator)."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from edgeml.codegen.generate import CompiledC
from edgeml.errors import EdgeMLError
from edgeml.runtime.interpreter import Interpreter

CFLAGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing", "-fno-ipa-cp-clone"]     # as the Makefile
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS = 1, 2, 4, 8
NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*\\n(\d+) bytes')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
INDIRECT = "__indirect_call"


def section_sizes(elf: bytes) -> dict:
    """Bytes of code, constants, initialised data and zeroed data in an ELF64 object file."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise EdgeMLError("the compiler's output is not an ELF64 object file")
    end = "<" if elf[5] == 1 else ">"
    shoff, = struct.unpack_from(end + "Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", elf, 0x3A)
    headers = [struct.unpack_from(end + "IIQQQQ", elf, shoff + k * shentsize) for k in range(shnum)]
    names_at = headers[shstrndx][4]
    sizes = dict(code=0, const=0, data=0, bss=0)
    for name_off, kind, flags, _, _, size in headers:
        name = elf[names_at + name_off:elf.index(b"\0", names_at + name_off)].decode()
        if not flags & SHF_ALLOC:
            continue
        if flags & SHF_EXECINSTR:
            sizes["code"] += size
        elif kind == SHT_NOBITS:
            sizes["bss"] += size
        elif not flags & SHF_WRITE or name.startswith(".data.rel.ro"):     # relocated constants: flash
            sizes["const"] += size
        else:
            sizes["data"] += size
    return sizes


def worst_stack(callgraph: str, root: str) -> Optional[int]:
    """The deepest stack from `root` in gcc's -fcallgraph-info=su graph; an indirect call (the thread pool's
    slice functions) counts as the deepest function of the unit."""
    frames = {t: int(b) for t, b in NODE.findall(callgraph)}
    calls = {}
    for src, dst in EDGE.findall(callgraph):
        calls.setdefault(src, set()).add(dst)
    start = root if root in frames else next((t for t in frames if t.endswith(":" + root)), None)
    if start is None:
        return None
    memo = {}

    def depth(node, path):
        if node in memo:
            return memo[node]
        if node in path:
            return 0
        path = path | {node}
        below = 0
        for child in calls.get(node, ()):
            if child == INDIRECT:
                below = max([below] + [depth(t, path) for t in frames if t != start])
            elif child in frames:
                below = max(below, depth(child, path))
        memo[node] = frames.get(node, 0) + below
        return memo[node]
    return depth(start, frozenset())


def measure_object(compiled: CompiledC, cc: str = "cc") -> dict:
    """Sizes of NAME.o as `cc` builds it, and the invoke's worst stack."""
    if shutil.which(cc) is None:
        raise EdgeMLError(f"--report compiles {compiled.name}.c to measure it and needs a C compiler; '{cc}' is "
                          "not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / f"{compiled.name}.o"
        cmd = [cc, *CFLAGS, f"-I{compiled.out_dir / 'include'}", f"-I{compiled.out_dir}", "-c",
               str(compiled.out_dir / f"{compiled.name}.c"), "-o", str(obj), "-fcallgraph-info=su"]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if run.returncode:           # a compiler without gcc's call-graph output: sizes only
            run = subprocess.run(cmd[:-1], capture_output=True, text=True, cwd=tmp)
        if run.returncode:
            raise EdgeMLError(f"compiling {compiled.name}.c failed: {run.stderr[-2000:]}")
        sizes = section_sizes(obj.read_bytes())
        graphs = list(Path(tmp).glob("*.ci"))
        sizes["stack"] = worst_stack(graphs[0].read_text(), f"{compiled.name}_invoke") if graphs else None
    return sizes


TFLM_SCRIPT = """
import sys
from tflite_micro.python.tflite_micro import runtime
runtime.Interpreter.from_file(sys.argv[1]).print_allocations()
"""


def tflm_arena(model) -> Optional[dict]:
    """TFLite Micro's arena for a .tflite file (bytes, as its recording allocator prints them), or None when the
    tflite_micro package is absent or refuses the model.  Run in a child process: the allocator prints through
    a C++ stream that only flushes at exit."""
    if not isinstance(model, (str, os.PathLike)) or not str(model).lower().endswith(".tflite"):
        return None
    spec = importlib.util.find_spec("tflite_micro")
    if spec is None:
        return None
    run = subprocess.run([sys.executable, "-c", TFLM_SCRIPT, os.fspath(model)], capture_output=True, text=True,
                         timeout=300)
    total = re.search(r"Arena allocation total (\d+) bytes", run.stdout + run.stderr)
    if run.returncode or not total:
        return None
    so = sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.so"), key=lambda p: p.stat().st_size)
    return {"arena_bytes": int(total.group(1)), "python_extension_bytes": so[-1].stat().st_size if so else None}


def default_compiler(target: str) -> str:
    """$CC, else the cross compiler for an aarch64 build on another machine, else cc."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    if target == "aarch64" and os.uname().machine != "aarch64" and shutil.which("aarch64-linux-gnu-gcc"):
        return "aarch64-linux-gnu-gcc"
    return "cc"


def flash_ram(compiled: CompiledC, model, cc: Optional[str] = None) -> dict:
    obj = measure_object(compiled, cc or default_compiler(compiled.target))
    stack = obj["stack"] or 0
    return {
        "model": os.fspath(model) if isinstance(model, (str, os.PathLike)) else None,
        "name": compiled.name, "target": compiled.target, "isa": compiled.isa,
        "flash": {"code_bytes": obj["code"], "const_bytes": obj["const"],
                  "weight_bytes": compiled.weight_bytes, "params_bytes": compiled.params_bytes,
                  "total_bytes": obj["code"] + obj["const"] + obj["data"]},
        "ram": {"arena_bytes": compiled.arena_bytes, "static_bytes": obj["data"] + obj["bss"] - compiled.arena_bytes,
                "stack_bytes": obj["stack"], "total_bytes": obj["data"] + obj["bss"] + stack},
        "interpreter_arena_bytes": Interpreter(model).arena_bytes,      # this host's kernels, as edgeml runs it
        "tflite_micro": tflm_arena(model),
    }


def text_report(r: dict) -> str:
    f, m, t = r["flash"], r["ram"], r["tflite_micro"]
    lines = [f"{r['name']}: target {r['target']} ({r['isa']} kernels)",
             f"  flash  {f['total_bytes']:>9,} bytes: code {f['code_bytes']:,}, constants {f['const_bytes']:,} "
             f"(weights {f['weight_bytes']:,}, step parameters {f['params_bytes']:,})",
             f"  RAM    {m['total_bytes']:>9,} bytes: arena {m['arena_bytes']:,}, other static {m['static_bytes']:,}, "
             f"stack {'unknown' if m['stack_bytes'] is None else format(m['stack_bytes'], ',')} "
             "(deepest call path of the invoke, gcc -fcallgraph-info)",
             f"  edgeml Interpreter arena on this machine {r['interpreter_arena_bytes']:,} bytes"]
    if t:
        lib = f"; its Python extension (interpreter + all ops, x86-64) {t['python_extension_bytes']:,} bytes" \
            if t.get("python_extension_bytes") else ""
        lines.append(f"  TFLite Micro arena {t['arena_bytes']:,} bytes (tensors + persistent buffers){lib}")
    else:
        lines.append("  TFLite Micro: not measured (tflite_micro not installed, or not a .tflite it can run)")
    return "\n".join(lines)
