"""Cross-compiles edgeml for aarch64 and runs its TensorFlow-free tests under qemu-user on two CPU models.

Called by ci/aarch64/run.sh once the arm64 Debian root (python3.11 + headers) and the aarch64 wheels are in place.
The sources are copied to a build folder (the host's own x86 build is left alone), the .pyx files are cythonized on
the host and compiled with aarch64-linux-gnu-gcc (the flags of setup.py); the host's x86 edgeml writes the expected
outputs of the reference models, and each CPU model runs the test files below plus that comparison.  A wrapper
script stands in for sys.executable so that the tests' own subprocesses run under the same qemu CPU.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CC = "aarch64-linux-gnu-gcc"
# setup.py's flags after Python's own (-fwrapv -DNDEBUG, as a native build gets them from sysconfig)
COMPILE_ARGS = ["-fwrapv", "-DNDEBUG", "-O3", "-ffp-contract=off", "-fno-strict-aliasing", "-shared", "-fPIC"]
SUFFIX = ".cpython-311-aarch64-linux-gnu.so"
# qemu CPU model -> the ISA path edgeml must pick on it
CPUS = {"max": "neon_i8mm", "cortex-a57": "neon"}
# the kernels' tests run on every CPU model; the loader's (hostile files, API, reliability: Python and the same
# kernels again) on the first one only, which halves the run's time
KERNEL_TESTS = ["tests/test_kernel_paths.py", "tests/test_conv_kernel_paths.py", "tests/test_elementwise_paths.py",
                "tests/test_binary_split_paths.py", "tests/test_float_kernel_paths.py",
                "tests/test_mlperf_conformance.py"]
LOADER_TESTS = ["tests/test_hostile_models.py", "tests/test_reliability.py", "tests/test_runtime_api.py"]
# qemu CPU model -> the ISA paths forced (EDGEML_ISA) for the reference models' comparison, beside the default:
# plain NEON and scalar are cortex-a57's default and forced paths, so -cpu max forces only the one between
FORCED = {"cortex-a57": ("scalar",), "max": ("neon_dotprod",)}
# the only skips allowed: tests that need TensorFlow or LiteRT (neither runs here: LiteRT's aarch64 wheel crashes
# under qemu-user; conformance.py stands in for it), the public corpus (not in a clone), x86 paths, and on the
# plain-NEON core the paths it lacks
ALLOWED_SKIP = ("tensorflow", "ai_edge_litert", "this CPU has no avx", "public model corpus")
ALLOWED_SKIP_ON = {"cortex-a57": ("this CPU has no neon_dotprod", "this CPU has no neon_i8mm")}


def copy_sources(src: Path) -> None:
    """The files a build needs, with their times kept so that unchanged modules are not rebuilt."""
    ignore = shutil.ignore_patterns("*.so", "__pycache__", "build", "*.egg-info", ".pytest_cache")
    for name in ("edgeml", "converters", "tests", "ci"):       # pure Python: copied anew (no stale files)
        shutil.rmtree(src / name, ignore_errors=True)
    for name in ("edgeml", "converters", "cython_ops", "tests", "ci"):
        shutil.copytree(REPO / name, src / name, ignore=ignore, dirs_exist_ok=True, copy_function=shutil.copy2)


def cythonize_all(src: Path) -> list[Path]:
    """C sources from the .pyx files (on the host; Cython's output does not depend on the target)."""
    pyx = sorted((src / "cython_ops").glob("*.pyx"))
    subprocess.run([sys.executable, "-c", "import sys; from Cython.Build import cythonize; "
                    "cythonize(sys.argv[1:], compiler_directives={'language_level': '3'}, include_path=['.'], "
                    "quiet=True)", *[str(p.relative_to(src)) for p in pyx]], cwd=src, check=True)
    return [p.with_suffix(".c") for p in pyx]


def cross_compile(src: Path, root: Path, sources: list[Path]) -> None:
    headers = list((src / "cython_ops" / "include").glob("*.h")) + [src / "cython_ops" / "em_params.pxd"]
    newest_header = max(h.stat().st_mtime for h in headers)
    includes = [f"-I{src / 'cython_ops' / 'include'}", f"-I{src / 'cython_ops'}", f"-I{src}",
                f"-I{root / 'usr/include/python3.11'}", f"-I{root / 'usr/include'}"]

    def build(c_file: Path) -> str:
        target = c_file.with_name(c_file.stem + SUFFIX)
        if target.exists() and target.stat().st_mtime > max(c_file.stat().st_mtime, newest_header):
            return ""
        done = subprocess.run([CC, *COMPILE_ARGS, *includes, str(c_file), "-o", str(target), "-lpthread"],
                              capture_output=True, text=True)
        return "" if done.returncode == 0 else f"{c_file.name}:\n{done.stderr[-4000:]}"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        errors = [e for e in pool.map(build, sources) if e]
    if errors:
        sys.exit("aarch64: cross-compilation failed\n" + "\n".join(errors))


def python_wrapper(build: Path, root: Path, cpu: str) -> Path:
    """An executable that runs the root's python3.11 under qemu with this CPU; it becomes the guest's argv[0] and
    so sys.executable, which the tests use to start subprocesses."""
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    wrapper = build / f"python-{cpu}"
    wrapper.write_text(f'#!/bin/sh\nexec {qemu} -L {root} -cpu {cpu} -0 "$0" {root}/usr/bin/python3.11 "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def run_pytest(wrapper: Path, env: dict, src: Path, cpu: str, files: list[str], junit: Path, log) -> list[str]:
    """Runs the test files; returns the problems (failures, unexpected skips)."""
    done = subprocess.run([str(wrapper), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           f"--junitxml={junit}", *files], cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT)
    problems = [] if done.returncode == 0 else [f"pytest exited {done.returncode} on {cpu}"]
    if not junit.exists():
        return problems + [f"{cpu}: pytest wrote no report (it crashed)"]
    ran = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        ran += 1
        skipped = case.find("skipped")
        if skipped is not None:
            reason = skipped.get("message", "")
            if not any(fragment in reason for fragment in ALLOWED_SKIP + ALLOWED_SKIP_ON.get(cpu, ())):
                problems.append(f"{cpu}: {case.get('name')} skipped: {reason}")
    if ran == 0:
        problems.append(f"{cpu}: no test ran")
    return problems


def run_cpu(args, src: Path, expected: Path, number: int, cpu: str) -> list[str]:
    """One qemu CPU model: its ISA pick, the reference models on each path, the test files; returns the problems.
    Its output goes to build/log-<cpu>.txt and is printed when it ends."""
    t0 = time.time()
    wrapper = python_wrapper(args.build, args.root, cpu)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "PYTHONHOME": str(args.root / "usr"), "PYTHONPATH": f"{src}:{src / 'tests'}:{args.site}",
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    problems = []
    log_path = args.build / f"log-{cpu}.txt"
    with open(log_path, "w") as log:
        isa = subprocess.run([str(wrapper), "-c", "from cython_ops.conv import isa; print(isa())"], cwd=src,
                             env=env, capture_output=True, text=True)
        if isa.returncode != 0 or isa.stdout.strip() != CPUS.get(cpu, isa.stdout.strip()):
            problems.append(f"{cpu}: edgeml picked {isa.stdout.strip()!r}, wanted {CPUS.get(cpu)!r} {isa.stderr}")
        for forced in ("",) + FORCED.get(cpu, ()):
            print(f"aarch64: -cpu {cpu} {'EDGEML_ISA=' + forced if forced else 'default path'}", file=log, flush=True)
            check = subprocess.run([str(wrapper), "ci/aarch64/conformance.py", "--check", str(expected)]
                                   + (["--int8-only"] if forced else []), cwd=src,
                                   env=dict(env, EDGEML_ISA=forced) if forced else env,
                                   stdout=log, stderr=subprocess.STDOUT)
            if check.returncode != 0:
                problems.append(f"{cpu} {forced}: the reference models' outputs differ from the x86 run")
        files = KERNEL_TESTS + (LOADER_TESTS if number == 0 else [])
        problems += run_pytest(wrapper, env, src, cpu, files, args.build / f"junit-{cpu}.xml", log)
        print(f"aarch64: -cpu {cpu} took {time.time() - t0:.0f} s", file=log, flush=True)
    print(log_path.read_text(errors="replace"), flush=True)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="the arm64 Debian root")
    parser.add_argument("--site", type=Path, required=True, help="the aarch64 wheels (pip --target)")
    parser.add_argument("--build", type=Path, required=True, help="where the aarch64 build goes")
    parser.add_argument("--cpus", default=",".join(CPUS), help="qemu CPU models to run")
    args = parser.parse_args()
    src = args.build / "src"
    src.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    copy_sources(src)
    cross_compile(src, args.root, cythonize_all(src))
    print(f"aarch64: cross-compiled in {time.time() - t0:.0f} s", flush=True)

    expected = args.build / "expected.npz"
    host = subprocess.run([sys.executable, str(REPO / "ci/aarch64/conformance.py"), "--write", str(expected)],
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if host.returncode != 0:
        sys.exit("aarch64: the host run of the reference models failed (is edgeml built on the host?)")
    cpus = args.cpus.split(",")
    # the CPU models run side by side (qemu-user runs one guest thread on one host CPU), each into its own log,
    # printed whole when it ends, and each in its own copy of the built tree: two pytest runs sharing one tree
    # write each other's __pycache__ and test files while importing from it (a -cpu max run once failed a
    # subprocess's `import edgeml.runtime` there, and passed alone)
    trees = {}
    for cpu in cpus:
        trees[cpu] = args.build / f"src-{cpu}"
        shutil.rmtree(trees[cpu], ignore_errors=True)
        shutil.copytree(src, trees[cpu], symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    with ThreadPoolExecutor(max_workers=max(1, min(len(cpus), os.cpu_count() or 1))) as pool:
        runs = [pool.submit(run_cpu, args, trees[cpu], expected, number, cpu) for number, cpu in enumerate(cpus)]
        problems = [problem for run in runs for problem in run.result()]
    if problems:
        sys.exit("aarch64 run FAILED:\n  " + "\n  ".join(problems))
    print("aarch64 run passed on " + ", ".join(args.cpus.split(",")))


if __name__ == "__main__":
    main()
