#!/usr/bin/env python3
"""Check a folded-stacks file (Brendan Gregg's format) as flamegraph.pl reads it.

usage: check_folded.py FILE [--total BYTES]

flamegraph.pl reads each line with /^(.*)\\s+?(\\d+(?:\\.\\d*)?)$/ and splits the stack on ';'
(the outermost frame first); a line that does not match is "ignored" with a warning. Checked:
every line matches "frame(;frame)* COUNT" with a single space before COUNT, COUNT a positive
integer, no empty frame, no frame with a line break, no stack twice (the exporter merges equal
stacks), lines sorted; with --total, the counts add up to BYTES. Exit status 0 or 1.
"""
import re
import sys

LINE = re.compile(r"^(.*)\s+?(\d+(?:\.\d*)?)$")  # flamegraph.pl's own expression


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    path, total = argv[1], None
    if len(argv) == 4 and argv[2] == "--total":
        total = int(argv[3])
    errors, stacks, last, s = [], set(), None, 0
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        print(f"{path}: not UTF-8: {e}")
        return 1
    if text and not text.endswith("\n"):
        errors.append("the last line has no newline")
    for no, line in enumerate(text.splitlines(), 1):
        m = LINE.match(line)
        if not m:
            errors.append(f"line {no}: flamegraph.pl would ignore it: {line!r}")
            continue
        stack, count = m.group(1), m.group(2)
        if not re.fullmatch(r"[^ ].* [1-9][0-9]*", line) or stack.endswith(" "):
            errors.append(f"line {no}: not 'frames COUNT' with one space and a positive integer: {line!r}")
        frames = stack.split(";")
        if any(fr == "" for fr in frames):
            errors.append(f"line {no}: an empty frame: {line!r}")
        if stack in stacks:
            errors.append(f"line {no}: the stack appears twice")
        stacks.add(stack)
        if last is not None and stack < last:
            errors.append(f"line {no}: lines are not sorted")
        last = stack
        s += int(count)
    if total is not None and s != total:
        errors.append(f"the counts add up to {s}, not {total}")
    for e in errors[:50]:
        print(f"{path}: {e}")
    if errors:
        return 1
    print(f"{path}: {len(stacks)} stacks, {s} bytes: valid folded stacks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
