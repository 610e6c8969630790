"""Profile the compiled engine with ``perf``: symbols and per-instruction samples for JIT code.

numba's machine code lives in anonymous memory, so ``perf report`` shows it as addresses. This
module runs a workload's stream through a prefilled engine (as ``bench engine`` times it) after
writing ``/tmp/perf-<pid>.map`` (the convention perf reads for JIT code) for every function
linked into `run_batch`: names and sizes come from the ELF symbol table of the object code in
numba's on-disk cache, addresses from the loaded library. It also copies each function's code
from memory, so ``annotate`` can print the hottest instructions of one function.

    perf record -e cpu-clock -F 4000 -o perf.data -- python -m bench.perfmap run --workload c
    perf report -i perf.data --sort sym --stdio
    perf script -i perf.data -F ip > ips.txt
    python -m bench.perfmap annotate --ips ips.txt --function place_check

Why: this is how the ~130-word argument pushes of the state-by-value calls were found (45 % of
the samples of workload (c), docs/benchmarks.md). Needs ``perf``, ``nm`` and ``objdump``; the
kernels must have been compiled (numba cache present) before the run.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

CODE_DIR = Path("/tmp/kootabase-perf-code")


def _elves_from_cache(index_path: Path) -> list[bytes]:
    """The object code stored in each numba cache data file next to ``index_path``, newest
    first. There is one file per cache key, and the key includes the host CPU's name and
    features: under valgrind (which reports other CPU features) numba compiles and stores
    another version beside the native one."""
    stem = index_path.name.removesuffix(".nbi")
    data = sorted(
        index_path.parent.glob(f"{stem}.*.nbc"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    if not data:
        raise SystemExit(f"no numba cache data for {index_path}: compile the kernels first")
    elves = []
    for path in data:
        blob = path.read_bytes()
        start = blob.find(b"\x7fELF")
        if start < 0:
            raise SystemExit(f"{path} holds no ELF object")
        (shoff,) = struct.unpack_from("<Q", blob, start + 0x28)
        shentsize, shnum = struct.unpack_from("<HH", blob, start + 0x3A)
        elves.append(blob[start : start + shoff + shentsize * shnum])
    return elves


def _function_sizes(elf_bytes: bytes) -> dict[str, int]:
    """Defined function symbols of an object file and their sizes in bytes (``nm -S``)."""
    elf = CODE_DIR / f"run_batch-{os.getpid()}.o"  # runs side by side must not share it
    elf.write_bytes(elf_bytes)
    listing = subprocess.run(
        ["nm", "-S", "--defined-only", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    elf.unlink()
    sizes = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTW":
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def write_perf_map() -> int:
    """Write the perf map and the code copies for `run_batch` and what it links; returns the
    number of functions mapped. Of the cached versions, the one whose symbols this process
    has loaded is used (the names carry a per-compilation suffix)."""
    from engine.core.kernel import run_batch

    CODE_DIR.mkdir(parents=True, exist_ok=True)
    library = run_batch.overloads[run_batch.signatures[0]].library
    best: list[tuple[int, str]] = []
    sizes: dict[str, int] = {}
    for elf_bytes in _elves_from_cache(Path(run_batch._cache._cache_file._index_path)):
        names = _function_sizes(elf_bytes)
        entries = sorted(
            (library.get_pointer_to_function(name), name)
            for name in names
            if library.get_pointer_to_function(name)
        )
        if len(entries) > len(best):
            best, sizes = entries, names
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as out:
        for address, name in best:
            out.write(f"{address:x} {sizes[name]:x} {name}\n")
            code = ctypes.string_at(address, sizes[name])
            (CODE_DIR / f"{address:x}-{_short(name)}.bin").write_bytes(code)
    return len(best)


def _short(name: str) -> str:
    """``_ZN6engine4core8handlers5placeB4v..`` -> ``place`` (the kernel's Python name)."""
    head = re.split(r"B\d+v", name)[0]
    digits = len(head) - len(head.rstrip("abcdefghijklmnopqrstuvwxyz_"))
    return head[-digits:] if digits else head[-40:]


def run(workload_name: str, repetitions: int) -> None:
    from bench.compiled_api import CompiledHandle
    from bench.engine_bench import BATCH, DEFAULT_COMMANDS, DEFAULT_SEEDS
    from bench.workloads import WORKLOADS

    workload = WORKLOADS[workload_name](
        DEFAULT_SEEDS[workload_name], DEFAULT_COMMANDS[workload_name]
    )
    handle = CompiledHandle(workload)
    rows = handle.encode(workload.stream)
    handle.warm_up(rows)
    print(f"perf map: {write_perf_map()} functions", file=sys.stderr)
    slices = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    gc.disable()
    for _ in range(repetitions):
        engine = handle.fresh()
        start = time.process_time()
        for chunk in slices:
            engine.process_encoded(chunk)
        print(f"{time.process_time() - start:.3f} s CPU", file=sys.stderr)


def annotate(ips_file: Path, function: str, top: int) -> None:
    """Print the ``top`` hottest instructions of ``function`` with the three before each."""
    samples: collections.Counter[int] = collections.Counter()
    for line in ips_file.read_text().split():
        samples[int(line, 16)] += 1
    matches = list(CODE_DIR.glob(f"*-{function}.bin"))
    if not matches:
        raise SystemExit(f"no code copy for {function} in {CODE_DIR}")

    def hits(p: Path) -> int:
        start = int(p.name.split("-")[0], 16)
        return sum(n for a, n in samples.items() if start <= a < start + p.stat().st_size)

    path = max(matches, key=hits)  # the Python wrapper and cfunc share the kernel's name
    base = int(path.name.split("-")[0], 16)
    dump = subprocess.run(
        ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f"--adjust-vma={base:#x}", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line for line in dump.splitlines() if ":\t" in line]
    addresses = [int(line.split(":")[0], 16) for line in lines]
    total = sum(samples[a] for a in addresses)
    print(f"{function}: {total} samples")
    hot = sorted(range(len(lines)), key=lambda k: -samples[addresses[k]])[:top]
    for k in sorted(hot):
        for j in range(max(0, k - 3), k + 1):
            print(f"{samples[addresses[j]]:6d} {lines[j][:110]}")
        print("   --")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perfmap", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    run_p = sub.add_parser("run", help="run a workload with a perf map for the JIT code")
    run_p.add_argument("--workload", choices=["a", "b", "c"], default="c")
    run_p.add_argument("--repetitions", type=int, default=3)
    ann = sub.add_parser("annotate", help="hottest instructions of one kernel")
    ann.add_argument("--ips", type=Path, required=True, help="perf script -F ip output")
    ann.add_argument("--function", required=True, help="kernel name, e.g. place_check")
    ann.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    if args.what == "run":
        run(args.workload, args.repetitions)
    else:
        annotate(args.ips, args.function, args.top)


if __name__ == "__main__":
    main()
