#!/usr/bin/env python3
"""Parses every file in ios/ with tree-sitter and fails on a syntax error.

A PARSE, NOT A COMPILE: no Swift compiler, Xcode or iOS SDK runs on the
development machines. This finds unbalanced braces, malformed declarations
and statements, stray characters; it cannot find a wrong type, a misspelt
API, a missing import or an availability error.

Grammars (pinned by scripts/ios-syntax-check.sh): tree-sitter-swift for
.swift, tree-sitter-objc for .h and .mm (Objective-C on C). Where a grammar
lags the language, the exact constructs are listed below and blanked (same
length, so positions stay right) before parsing, and every use is counted
in the output:
- Swift: `@_documentation(visibility: private)` (an underscored attribute
  uniffi emits) and the closure `{ () }` (uniffi's callback glue).
- Objective-C++: C++ types inside an Objective-C method (the TurboModule's
  getTurboModule:). Such code sits between `// syntax-check: c++ begin` and
  `// syntax-check: c++ end`, at most MAX_CXX_LINES lines per file, and is
  not parsed at all.
- Objective-C headers: the `NS_SWIFT_NAME(...)` after a declaration is
  parsed as it is (the grammar accepts it).
A module map has no grammar here: it is checked against the one shape uniffi
writes. Any other file in ios/ fails the check, so nothing escapes it.

Before the files, the check proves it can fail: broken Swift and broken
Objective-C snippets must be reported.
"""

import pathlib
import plistlib
import re
import sys

import tree_sitter_objc
import tree_sitter_swift
from tree_sitter import Language, Parser

SWIFT = Parser(Language(tree_sitter_swift.language()))
OBJC = Parser(Language(tree_sitter_objc.language()))
MAX_CXX_LINES = 12

SWIFT_GAPS = [
    re.compile(rb"@_documentation\(visibility: private\)"),
    re.compile(rb"(?<=\{ )\(\)(?= \})"),
]
CXX_REGION = re.compile(
    rb"^[ \t]*// syntax-check: c\+\+ begin[^\n]*\n(.*?)^[ \t]*// syntax-check: c\+\+ end[^\n]*$",
    re.S | re.M,
)
MODULEMAP = re.compile(
    rb'\A(?://[^\n]*\n|\s)*module\s+S3bguCoreFFI\s*\{\s*header\s+"S3bguCoreFFI\.h"\s*'
    rb"export\s+\*\s*(?:use\s+\"Darwin\"\s*use\s+\"_Builtin_stdbool\"\s*use\s+\"_Builtin_stdint\"\s*)?"
    rb"\}\s*\Z"
)
SKIP_DIRS = {"S3bguCore.xcframework", "build", "Pods"}


def blank(src, pattern):
    """Replaces each match by spaces (newlines kept); returns (text, count)."""
    count = 0

    def repl(m):
        nonlocal count
        count += 1
        return re.sub(rb"[^\n]", b" ", m.group(0))

    return pattern.sub(repl, src), count


def errors(tree, src):
    found = []

    def walk(node):
        if node.is_error or node.is_missing:
            line = node.start_point[0] + 1
            col = node.start_point[1] + 1
            kind = "missing" if node.is_missing else "unexpected"
            text = src[node.start_byte : node.end_byte][:60].decode("utf-8", "replace")
            found.append(f"line {line}, column {col}: {kind} {text!r}")
            return
        if node.has_error:
            for child in node.children:
                walk(child)

    walk(tree.root_node)
    return found


def check_swift(src):
    notes = []
    for gap in SWIFT_GAPS:
        src, n = blank(src, gap)
        if n:
            notes.append(f"{n} x {gap.pattern.decode()} blanked (grammar gap)")
    return errors(SWIFT.parse(src), src), notes


def check_objc(src):
    notes = []
    for m in CXX_REGION.finditer(src):
        lines = m.group(1).count(b"\n")
        if lines > MAX_CXX_LINES:
            return [f"a c++ region of {lines} lines (at most {MAX_CXX_LINES})"], notes
    src, n = blank(src, CXX_REGION)
    if n:
        notes.append(f"{n} c++ region(s) not parsed")
    if b"syntax-check: c++" in src:
        return ["an unmatched '// syntax-check: c++' marker"], notes
    return errors(OBJC.parse(src), src), notes


def check_file(path):
    src = path.read_bytes()
    suffix = path.suffix
    if suffix == ".swift":
        return check_swift(src)
    if suffix in (".h", ".mm", ".m"):
        return check_objc(src)
    if suffix == ".modulemap":
        ok = MODULEMAP.match(src) is not None
        return ([] if ok else ["not the module map uniffi writes for S3bguCoreFFI"]), [
            "pattern check (no grammar)"
        ]
    if suffix == ".xcprivacy":
        # A property list: parsed by the standard library's plist reader.
        try:
            plist = plistlib.loads(src)
        except Exception as e:  # noqa: BLE001 - any parse error is the finding
            return [f"not a property list: {e}"], []
        if not isinstance(plist, dict):
            return ["a privacy manifest is a dictionary at the top"], []
        return [], ["property list parse"]
    return [f"no syntax check for *{suffix} files: add one to {pathlib.Path(__file__).name}"], []


def self_test():
    bad = {
        "swift": (check_swift, b"final class A {\n  func f( -> Int { return 1 }\n"),
        "objc": (check_objc, b"@implementation A\n- (void)f { [self g: ; }\n@end\n"),
    }
    for name, (check, src) in bad.items():
        found, _ = check(src)
        if not found:
            sys.exit(f"ios-syntax-check: the {name} parser accepted broken code; the check proves nothing")
    good = {
        "swift": (check_swift, b"final class A { func f() async throws -> Int { try await g() } }\n"),
        "objc": (check_objc, b"@implementation A\n- (void)f { [self g:1]; }\n@end\n"),
    }
    for name, (check, src) in good.items():
        found, _ = check(src)
        if found:
            sys.exit(f"ios-syntax-check: the {name} parser refused valid code: {found}")


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "ios")
    self_test()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not (SKIP_DIRS & set(p.relative_to(root).parts))
    )
    if not files:
        sys.exit(f"ios-syntax-check: no files under {root}")
    failed = 0
    for path in files:
        found, notes = check_file(path)
        extra = f" ({'; '.join(notes)})" if notes else ""
        if found:
            failed += 1
            print(f"FAIL {path}{extra}")
            for e in found[:20]:
                print(f"     {e}")
        else:
            print(f"ok   {path}{extra}")
    print(f"{len(files) - failed} passed, {failed} failed")
    print("(a parse with tree-sitter grammars, not a compile: types and APIs are unchecked)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
