#!/usr/bin/env python3
"""Check the structure of a speedscope JSON file as speedscope's importer uses it.

usage: check_speedscope.py FILE [--total BYTES]

Checked (speedscope's file-format-schema.json says the types; validate_speedscope.js checks the
schema itself when npm can fetch it): "$schema" is speedscope's; shared.frames is a list of
objects with a string name (and optional string file, number line); every profile is "sampled"
with a known unit, numeric startValue <= endValue, as many weights as samples, every sample a
list of integer indexes into shared.frames, weights non-negative and adding up to
endValue - startValue; the first profile's unit is "bytes" and, with --total, its weights add up
to BYTES. Exit status 0 or 1.
"""
import json
import sys

UNITS = {"bytes", "microseconds", "milliseconds", "nanoseconds", "none", "seconds"}


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    path, total = argv[1], None
    if len(argv) == 4 and argv[2] == "--total":
        total = int(argv[3])
    errors = []
    with open(path, "rb") as f:
        doc = json.loads(f.read().decode("utf-8"))
    if doc.get("$schema") != "https://www.speedscope.app/file-format-schema.json":
        errors.append("$schema is not speedscope's")
    frames = doc.get("shared", {}).get("frames")
    if not isinstance(frames, list):
        errors.append("shared.frames is not a list")
        frames = []
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or not isinstance(fr.get("name"), str):
            errors.append(f"frame {i} has no string name")
        elif "file" in fr and not isinstance(fr["file"], str):
            errors.append(f"frame {i}: file is not a string")
        elif "line" in fr and not isinstance(fr["line"], (int, float)):
            errors.append(f"frame {i}: line is not a number")
    profiles = doc.get("profiles")
    if not isinstance(profiles, list) or not profiles:
        errors.append("no profiles")
        profiles = []
    for k, p in enumerate(profiles):
        if p.get("type") != "sampled":
            errors.append(f"profile {k}: type {p.get('type')!r}")
            continue
        if p.get("unit") not in UNITS:
            errors.append(f"profile {k}: unit {p.get('unit')!r}")
        samples, weights = p.get("samples"), p.get("weights")
        if not isinstance(p.get("name"), str):
            errors.append(f"profile {k}: no name")
        if not isinstance(samples, list) or not isinstance(weights, list) or len(samples) != len(weights):
            errors.append(f"profile {k}: samples and weights differ in length")
            continue
        for j, st in enumerate(samples):
            if not isinstance(st, list) or not st or not all(
                    isinstance(x, int) and 0 <= x < len(frames) for x in st):
                errors.append(f"profile {k}: sample {j} is not a list of frame indexes")
                break
        if not all(isinstance(w, (int, float)) and w >= 0 for w in weights):
            errors.append(f"profile {k}: a weight is not a non-negative number")
        sv, ev = p.get("startValue"), p.get("endValue")
        if not isinstance(sv, (int, float)) or not isinstance(ev, (int, float)) or sv > ev:
            errors.append(f"profile {k}: startValue {sv!r} endValue {ev!r}")
        elif sum(weights) != ev - sv:
            errors.append(f"profile {k}: weights add up to {sum(weights)}, not endValue - startValue {ev - sv}")
        if k == 0:
            if p.get("unit") != "bytes":
                errors.append("the first profile is not in bytes")
            if total is not None and sum(weights) != total:
                errors.append(f"the bytes profile adds up to {sum(weights)}, not {total}")
    for e in errors[:50]:
        print(f"{path}: {e}")
    if errors:
        return 1
    print(f"{path}: {len(frames)} frames, {len(profiles)} profiles: valid speedscope structure")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
