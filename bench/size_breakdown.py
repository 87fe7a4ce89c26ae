#!/usr/bin/env python3
"""What each dependency adds to the engine's cdylib: sums `nm --size-sort`
symbol sizes of an unstripped build by crate, prints a markdown table.

    CARGO_PROFILE_MOBILE_STRIP=false cargo rustc --profile mobile -p s3bgu-core \
        --no-default-features --lib --crate-type cdylib -- -C link-arg=-Wl,-z,pack-relative-relocs
    python3 bench/size_breakdown.py target/mobile/libs3bgu_core.so

Rust symbols are put under the first crate named in their demangled path
(`<reqwest::Client as ...>::send` counts for reqwest; generic code counts
for the crate that defines it, wherever it was instantiated). C symbols are
ring's (prefixed `ring_core_`) or SQLite's (the only other C in the build).
What no symbol covers (unwind tables, relocations, ELF headers) is shown
as one line, measured against the same file stripped.
"""

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

STD = {"std", "core", "alloc", "compiler_builtins", "panic_unwind", "hashbrown_std",
       "std_detect", "rustc_demangle", "adler2", "miniz_oxide", "gimli", "addr2line",
       "object", "memchr_std", "unwind"}


def crate_of(name):
    if name.startswith("ring_core_") or name.startswith("_ring_core_"):
        return "ring (C and assembly)"
    if name.startswith(("uniffi_s3bgu", "ffi_s3bgu")):
        return "s3bgu_core"
    if name.startswith(("rust_", "__rust", "__rdl", "__rg_")):
        return "std"
    if "::" not in name:
        return "sqlite (C)"
    s = name
    while s and s[0] in "<&*( ":
        s = s[1:]
    for prefix in ("mut ", "dyn ", "const ", "unsafe ", "extern \"C\" "):
        if s.startswith(prefix):
            s = s[len(prefix):]
    if s.startswith("["):
        s = s[1:]
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", s)
    if not m:
        return "other"
    crate = m.group(1)
    if crate in STD:
        return "std"
    return crate


def main():
    lib = sys.argv[1]
    out = subprocess.run(["nm", "-S", "--size-sort", "-C", lib], capture_output=True,
                         text=True, check=True).stdout
    sizes = collections.Counter()
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        _, size, kind, name = parts
        if kind.lower() not in "tdrbvw":
            continue
        sizes[crate_of(name)] += int(size, 16)
    with tempfile.TemporaryDirectory() as d:
        stripped = os.path.join(d, "lib.so")
        shutil.copy(lib, stripped)
        subprocess.run(["strip", "--strip-all", stripped], check=True)
        total = os.path.getsize(stripped)
    named = sum(sizes.values())
    print(f"| crate | KiB | share |")
    print(f"|---|---|---|")
    rest = 0
    for crate, n in sizes.most_common():
        if n < 16 * 1024:
            rest += n
            continue
        print(f"| {crate} | {n / 1024:.0f} | {100 * n / total:.1f}% |")
    print(f"| (crates under 16 KiB each) | {rest / 1024:.0f} | {100 * rest / total:.1f}% |")
    print(f"| (no symbol: unwind tables, relocations, headers) | {(total - named) / 1024:.0f} "
          f"| {100 * (total - named) / total:.1f}% |")
    print(f"| **total, stripped** | {total / 1024:.0f} | 100% |")


if __name__ == "__main__":
    main()
