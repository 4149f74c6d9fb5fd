"""Shared code of the benchmark drivers (heap_bench.py, object_bench.py, gc_bench.py).

Standard library only. What is here is what the drivers do alike: describing the machine,
installing peer libraries, building refgc and the benchmark programs, running interleaved
rounds in a rotated order, parsing RESULT lines, medians and formatting, and rewriting a
section of a Markdown document. What a driver measures and how it reports it stays in the
driver.
"""

import hashlib
import io
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("+ " + " ".join(cmd))
    return subprocess.run(cmd, **kw)


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------

def add_rounds_args(ap):
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")


def add_build_args(ap, build_default, exported):
    """--raw, --repo, --build-dir, --lib, --bin-dir, --timeout, and either --ref and --no-build
    (exported=True: object_bench, gc_bench) or --rebuild (heap_bench)."""
    ap.add_argument("--raw", help="append every RESULT line to this file")
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="refgc checkout (default: ..)")
    ap.add_argument("--build-dir", help=f"where refgc is built (default {build_default})")
    if exported:
        ap.add_argument("--ref", help="benchmark this commit of refgc (e.g. HEAD) instead of "
                                      "the work tree: exported with git archive under the "
                                      "build dir")
    ap.add_argument("--lib", help="use this librefgc.a as is (no build)")
    if exported:
        ap.add_argument("--no-build", action="store_true",
                        help="do not (re)build refgc; use the library in the build dir")
    else:
        ap.add_argument("--rebuild", action="store_true",
                        help="build refgc even if librefgc.a exists")
    ap.add_argument("--bin-dir", help="where to put the benchmark binaries (default: temp)")
    ap.add_argument("--timeout", type=int, default=300, help="per-run timeout in seconds")


def parse_args(ap):
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    return args


def parse_names(ap, text, allowed, what):
    """The comma-separated list `text`, each name checked against `allowed`."""
    names = [a.strip() for a in text.split(",") if a.strip()]
    for a in names:
        if a not in allowed:
            ap.error(f"unknown {what} {a}")
    return names


def repro_cmd(script, args):
    """The command line that reproduces a report (for the doc sections)."""
    return ("python3 bench/" + script + " --rounds " + str(args.rounds) +
            (" --quick" if args.quick else "") +
            "".join(f" --only {o}" for o in (args.only or [])) +
            (f" --ref {args.ref}" if args.ref else ""))


# ------------------------------------------------------------------------------------------
# Peers and interpreters
# ------------------------------------------------------------------------------------------
# peers: name -> (define, link flags, Debian package, header that proves it is installed)

def dpkg_version(pkg):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", pkg],
                             capture_output=True, text=True)
    except FileNotFoundError:
        return None
    if out.returncode != 0:
        return None
    status, _, version = out.stdout.partition("\t")
    return version if status.endswith("installed") and "not-installed" not in status else None


def ensure_peers(wanted, peers):
    """Install missing peer packages when root; return (the set of peers that can be used,
    [(peer, why)] for those that cannot)."""
    missing = [a for a in wanted if a in peers and peers[a][3] and not os.path.exists(peers[a][3])]
    if missing:
        pkgs = [peers[a][2] for a in missing]
        if os.geteuid() == 0 and shutil.which("apt-get"):
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            rc = run(["apt-get", "install", "-y"] + pkgs, env=env).returncode
            if rc != 0:
                run(["apt-get", "update"], env=env)
                run(["apt-get", "install", "-y"] + pkgs, env=env)
        else:
            log("note: not root or no apt-get: cannot install " + " ".join(pkgs))
    usable = set()
    for a in wanted:
        if a not in peers:
            continue
        header = peers[a][3]
        if header and not os.path.exists(header):
            log(f"SKIP {a}: {peers[a][2]} is not installed ({header} missing)")
            continue
        usable.add(a)
    skipped = [(a, peers[a][2] + " not installed") for a in wanted
               if a in peers and a not in usable]
    return usable, skipped


def find_pythons(requested, defaults):
    """[(path of the interpreter, label)] for the requested interpreters (or `defaults`),
    without duplicates."""
    cands = requested or defaults
    out, seen = [], set()
    for c in cands:
        if not c or not (os.path.exists(c) or shutil.which(c)):
            continue
        try:
            r = subprocess.run([c, "-c", "import sys, platform, sysconfig; "
                                "print(sys.executable); print(platform.python_version()); "
                                "print(sysconfig.get_config_var('CONFIG_ARGS') or '')"],
                               capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode != 0:
            continue
        lines = r.stdout.splitlines() + ["", "", ""]
        exe, ver, conf = lines[0], lines[1], lines[2]
        real = os.path.realpath(exe)
        if real in seen:
            continue
        seen.add(real)
        notes = []
        if "--enable-optimizations" in conf:
            notes.append("PGO")
        if "--with-lto" in conf:
            notes.append("LTO")
        out.append((exe, f"CPython {ver} `{exe}`" + (f" ({', '.join(notes)})" if notes else "")))
    return out


def machine_info(variants, peers, pythons=(), memory=True, compiler_note=True, glibc=True):
    """The '### Machine' list. compiler_note: say how the benchmark and refgc were built;
    memory, glibc: include those lines."""
    lines = [f"- nproc: {os.cpu_count()}"]
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines.append(f"- CPU: {model}")
    if memory:
        try:
            with open("/proc/meminfo") as f:
                kb = int(f.readline().split()[1])
            lines.append(f"- memory: {kb / 1024 / 1024:.0f} GiB")
        except (OSError, ValueError, IndexError):
            pass
    lines.append(f"- kernel: {platform.release()}")
    try:
        cc = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout
        note = (f"; benchmark built with {' '.join(CFLAGS)}; refgc with CMake's Release flags"
                if compiler_note else "")
        lines.append(f"- compiler: {cc.splitlines()[0] if cc else 'unknown'}{note}")
    except OSError:
        pass
    if glibc:
        libc = " ".join(platform.libc_ver())
        lines.append(f"- glibc: {libc or 'unknown'}")
    for a in variants:
        if a in peers and peers[a][2]:
            pkg = peers[a][2]
            lines.append(f"- {a}: {pkg} {dpkg_version(pkg) or 'not installed'}")
    for _py, label in pythons:
        lines.append(f"- {label}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# refgc
# ------------------------------------------------------------------------------------------

def build_refgc(repo, build_dir, lib, no_build):
    """Return the path of librefgc.a, configuring and (incrementally) building it in build_dir;
    None if it cannot be built."""
    if lib:
        if os.path.exists(lib):
            return lib
        log(f"SKIP refgc: {lib} does not exist")
        return None
    out = os.path.join(build_dir, "librefgc.a")
    if no_build:
        if os.path.exists(out):
            return out
        log(f"SKIP refgc: {out} does not exist (--no-build)")
        return None
    if not os.path.exists(os.path.join(repo, "CMakeLists.txt")) or not shutil.which("cmake"):
        log("SKIP refgc: no CMakeLists.txt in " + repo + " or no cmake")
        return out if os.path.exists(out) else None
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        r = run(["cmake", "-S", repo, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                 "-DREFGC_BUILD_TESTS=OFF", "-DREFGC_BUILD_TOOLS=OFF"],
                capture_output=True, text=True)
        if r.returncode != 0:
            log(r.stdout[-3000:] + r.stderr[-3000:])
            log("SKIP refgc: cmake configure failed")
            return None
    # Always build: a no-op when nothing changed, and never a stale library after an edit.
    r = run(["cmake", "--build", build_dir, "--target", "refgc_static", "-j2"],
            capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(out):
        log(r.stdout[-3000:] + r.stderr[-3000:])
        log("SKIP refgc: the library failed to build")
        return None
    return out


def export_ref(repo, ref, build_dir):
    """Export commit `ref` of `repo` (git archive) to BUILD_DIR/src-SHA; return (dir, sha) or
    (None, None). The work tree is not touched."""
    r = subprocess.run(["git", "-C", repo, "rev-parse", "--verify", ref + "^{commit}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"SKIP refgc: {ref} is not a commit of {repo}")
        return None, None
    sha = r.stdout.strip()
    dest = os.path.join(build_dir, "src-" + sha[:12])
    if not os.path.exists(os.path.join(dest, "CMakeLists.txt")):
        a = subprocess.run(["git", "-C", repo, "archive", "--format=tar", sha],
                           capture_output=True)
        if a.returncode != 0:
            log(f"SKIP refgc: git archive {sha[:12]} failed: {a.stderr.decode()[-500:]}")
            return None, None
        os.makedirs(dest, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(a.stdout), mode="r:") as tf:
            try:
                tf.extractall(dest, filter="data")
            except TypeError:  # Python without extraction filters
                tf.extractall(dest)
    return dest, sha


def source_fingerprint(repo, commit=None, dirty_mark=True):
    """Short hash of refgc's sources, to tell which snapshot of the library was measured.
    `commit`: the tree is an export of this commit (not a work tree). dirty_mark: say when
    the work tree has uncommitted changes to the sources."""
    h = hashlib.sha256()
    n = 0
    for top in ("src", "include", "CMakeLists.txt"):
        base = os.path.join(repo, top)
        paths = [base] if os.path.isfile(base) else sorted(
            os.path.join(root, f) for root, _d, files in os.walk(base) for f in files)
        for path in sorted(paths):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            h.update(os.path.relpath(path, repo).encode() + b"\0" + data + b"\0")
            n += 1
    if commit:
        return (f"git {commit[:7]} (exported, work tree not used); sources sha256 "
                f"{h.hexdigest()[:12]} ({n} files)")
    git = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    head = git.stdout.strip() if git.returncode == 0 else "no commit"
    mark = ""
    if dirty_mark:
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "src",
                                "include", "CMakeLists.txt"], capture_output=True, text=True)
        mark = " + uncommitted changes" if dirty.returncode == 0 and dirty.stdout.strip() else ""
    return f"git {head}{mark}; sources sha256 {h.hexdigest()[:12]} ({n} files)"


def prepare_refgc(args, build_dir, wanted, usable, skipped):
    """For drivers with --ref/--no-build: export the commit when --ref is given, fingerprint
    the sources and build the library. Sets args.lib_src and args.commit; adds "refgc" to
    usable or a reason to skipped. Returns (librefgc.a or None, fingerprint or None)."""
    repo = args.repo
    refgc_lib = None
    lib_src, lib_build, commit = repo, build_dir, None
    if "refgc" in wanted and args.ref:
        lib_src, commit = export_ref(repo, args.ref, build_dir)
        lib_build = os.path.join(build_dir, "build-" + commit[:12]) if commit else None
    args.lib_src, args.commit = lib_src, commit
    fp_before = source_fingerprint(lib_src, commit) if "refgc" in wanted and lib_src else None
    if "refgc" in wanted:
        refgc_lib = (build_refgc(lib_src, lib_build, args.lib, args.no_build) if lib_src
                     else None)
        if refgc_lib:
            usable.add("refgc")
        else:
            skipped.append(("refgc", "library not available or failed to build"))
    return refgc_lib, fp_before


# ------------------------------------------------------------------------------------------
# Compiling the benchmark
# ------------------------------------------------------------------------------------------

def compile_bench(variant, src, bin_dir, repo, lib, peers, refgc_link_sets):
    """Build SRC for one variant as BIN_DIR/<program>_<variant>; the first of the link sets
    that links wins. Returns the binary, or None."""
    prog = os.path.splitext(os.path.basename(src))[0]
    out = os.path.join(bin_dir, prog + "_" + variant)
    if variant == "refgc":
        defines = ["-DBENCH_REFGC", "-I" + os.path.join(repo, "include")]
        link_sets = [[lib] + links for links in refgc_link_sets]
    else:
        define, link, _pkg, _hdr = peers[variant]
        defines = ["-D" + define] if define else []
        link_sets = [link]
    last = None
    for link in link_sets:
        cmd = ["cc"] + CFLAGS + defines + [src, "-o", out] + link
        r = run(cmd, capture_output=True, text=True)
        if r.stderr.strip():
            log(r.stderr.rstrip())
        if r.returncode == 0:
            return out
        last = r
    log(f"SKIP {variant}: {os.path.basename(src)} failed to compile/link "
        f"(exit {last.returncode})")
    return None


def compile_all(wanted, usable, src, bin_dir, repo, lib, peers, refgc_link_sets, skipped):
    """{variant: binary} for the usable variants; the ones that fail go to skipped."""
    binaries = {}
    for a in wanted:
        if a not in usable:
            continue
        b = compile_bench(a, src, bin_dir, repo, lib, peers, refgc_link_sets)
        if b:
            binaries[a] = b
        else:
            skipped.append((a, "benchmark failed to compile or link"))
    return binaries


# ------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------

RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)
NUMBER_RE = re.compile(r"-?[0-9.]+(e-?[0-9]+)?")


def parse_result(text, plain_numbers=False):
    """The fields of the first RESULT line of `text` ("_line": the line itself), values that
    parse as floats as floats; plain_numbers: only values that look like plain decimal
    numbers (no nan, inf)."""
    m = RESULT_RE.search(text)
    if not m:
        return None
    fields = {"_line": m.group(0)}
    for tok in m.group(1).split():
        k, _, v = tok.partition("=")
        try:
            fields[k] = v if plain_numbers and not NUMBER_RE.fullmatch(v) else float(v)
        except ValueError:
            fields[k] = v
    return fields


def bench_env(names, prefixes):
    """The environment without the variables (debug switches, preloads, tuning) that would
    change what is measured."""
    env = dict(os.environ)
    for k in list(env):
        if k in names or k.startswith(prefixes):
            del env[k]
    return env


def run_case(argv, timeout, env, plain_numbers=False):
    """Run one benchmark process; return (result fields, None) or (None, why it failed)."""
    start = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    wall = time.monotonic() - start
    if r.returncode != 0:
        how = (f"killed by signal {-r.returncode}" if r.returncode < 0
               else f"exit status {r.returncode}")
        tail = "\n".join((r.stderr or "").strip().splitlines()[-15:])
        return None, f"{how} after {wall:.1f} s; stderr:\n{tail}"
    res = parse_result(r.stdout, plain_numbers)
    if res is None:
        return None, "no RESULT line in output:\n" + r.stdout[-2000:]
    if r.stderr.strip():
        res["_stderr"] = r.stderr.strip()[-2000:]
    res["_wall"] = wall
    return res, None


def rotated(seq, rnd):
    """`seq` rotated left by `rnd` places (the order of round `rnd`)."""
    k = rnd % len(seq)
    return seq[k:] + seq[:k]


class Rounds:
    """What run_rounds measured besides the results."""

    def __init__(self):
        self.failures = []  # (name, round, why)
        self.elapsed = 0.0
        self.load_before = self.load_after = (0.0, 0.0, 0.0)

    def load_line(self, note):
        return (f"\nTotal benchmark time: {self.elapsed:.0f} s. Load average (1/5/15 min) "
                f"before: {'/'.join(f'{x:.2f}' for x in self.load_before)}; after: "
                f"{'/'.join(f'{x:.2f}' for x in self.load_after)} ({note}).\n")


def run_rounds(rounds, schedule, timeout, env, raw_path, record, plain_numbers=False):
    """Interleaved rounds. schedule(rnd) -> (text after "== round i/n", [(name, argv, raw
    prefix, item)]) in the order to run them; record(item, result, name) stores a result and
    returns the progress line to log. A raw_path gets every RESULT line, after "round=i " and
    the prefix."""
    rr = Rounds()
    raw = open(raw_path, "a") if raw_path else None
    rr.load_before = os.getloadavg()
    if rr.load_before[0] > 0.5:
        log(f"warning: the machine is busy (load average {rr.load_before[0]:.2f}); "
            "timings will be noisy")
    t_start = time.monotonic()
    for rnd in range(rounds):
        header, items = schedule(rnd)
        log(f"== round {rnd + 1}/{rounds}{header}")
        for name, argv, prefix, item in items:
            out, err = run_case(argv, timeout, env, plain_numbers)
            if err:
                rr.failures.append((name, rnd, err))
                log(f"FAIL round {rnd + 1} {name}: {err}")
                continue
            log("  " + record(item, out, name))
            if "_stderr" in out:
                log(f"  ({name} wrote to stderr: {out['_stderr'][:500]})")
            if raw:
                raw.write(f"round={rnd + 1} {prefix}{out['_line']}\n")
                raw.flush()
    if raw:
        raw.close()
    rr.elapsed = time.monotonic() - t_start
    rr.load_after = os.getloadavg()
    return rr


class Run:
    """One benchmark run repeated once per round: a row of a table."""

    def __init__(self, key, group, label, argv, variant):
        self.key, self.group, self.label, self.argv, self.variant = key, group, label, argv, variant


def group_schedule(runs, groups):
    """A schedule for run_rounds: group after group, each group's runs rotated by the round."""
    def schedule(rnd):
        items = []
        for g in groups:
            for r in rotated([r for r in runs if r.group == g], rnd):
                items.append((f"{g}/{r.key}", r.argv, f"key={r.key} ", r))
        return "", items
    return schedule


# ------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------

def med(values):
    return statistics.median(values) if values else None


def fmt(v, nd=1):
    if v is None:
        return "—"
    return f"{v:.{nd}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(v, limit, at_most=True):
    if v is None:
        return "not measured"
    ok = v <= limit if at_most else v >= limit
    if ok:
        return "**met**"
    if at_most:
        return f"**missed** ({v / limit:.2f}× the limit)"
    return f"**missed** ({limit / v:.2f}× short)"


class Results:
    def __init__(self):
        self.by = {}  # (group, key) -> [result dict]

    def add(self, run_, res):
        self.by.setdefault((run_.group, run_.key), []).append(res)

    def n(self, group, key):
        return len(self.by.get((group, key), []))

    def vals(self, group, key, field):
        return [r[field] for r in self.by.get((group, key), []) if isinstance(r.get(field), float)]

    def col(self, group, key, field):
        return med(self.vals(group, key, field))

    def share(self, group, key, num="gc_seconds", den="seconds"):
        """Median over runs of num/den (each run's own share)."""
        out = []
        for r in self.by.get((group, key), []):
            a, b = r.get(num), r.get(den)
            if isinstance(a, float) and isinstance(b, float) and b > 0:
                out.append(a / b)
        return med(out)

    def maxv(self, group, key, field):
        v = self.vals(group, key, field)
        return max(v) if v else None

    def spread(self, group, key, field, nd=1, scale=1.0):
        vals = self.vals(group, key, field)
        if len(vals) < 2:
            return ""
        return f"{min(vals) * scale:.{nd}f}–{max(vals) * scale:.{nd}f}"


def append_library(out, args, refgc_lib, fp_before):
    """The 'refgc library: ...' paragraph of a driver with --ref/--no-build."""
    if not refgc_lib:
        return
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(refgc_lib)))
    shown = (os.path.relpath(refgc_lib, args.repo) if refgc_lib.startswith(args.repo + os.sep)
             else refgc_lib)
    fp_after = source_fingerprint(args.lib_src, args.commit)
    out.append(f"refgc library: `{shown}` (built {built}); source tree when it was built: "
               f"{fp_before}")
    if args.lib or args.no_build:
        out.append("(the library was used as given, not rebuilt: it may be older than "
                   "that source tree)")
    if fp_after != fp_before:
        out.append(f"**The sources changed during the run** (now: {fp_after}); the figures "
                   f"are for the library built at the start.")
    out.append("")


def append_skipped_failures(out, skipped, failures, skipped_label="Skipped"):
    if skipped:
        out.append(f"{skipped_label}: " + "; ".join(f"{a} ({why})" for a, why in skipped))
        out.append("")
    if failures:
        out.append("Failed runs:")
        out.append("")
        for name, rnd, why in failures:
            first = why.splitlines()[0] if why else ""
            out.append(f"- round {rnd + 1}, {name}: {first}")
        out.append("")


def write_outputs(text, out_path):
    print(text)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)


# ------------------------------------------------------------------------------------------
# Doc sections
# ------------------------------------------------------------------------------------------

def _read(path):
    if os.path.exists(path):
        with open(path) as f:
            return f.read()
    return ""  # a new file holds this section only; others add theirs


def _append_block(text, block):
    """`block` appended to `text` after one blank line."""
    if text and not text.endswith("\n"):
        text += "\n"
    if text and not text.endswith("\n\n"):
        text += "\n"
    return text + block


def replace_heading_section(path, heading, section_text):
    """Replace the section of `path` that starts with the line `heading` (up to the next `## `
    or `# ` heading) with section_text, or append it; create the file (with this section only)
    when it does not exist. Other sections are left byte for byte as they were."""
    text = _read(path)
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip("\n") == heading), None)
    body = section_text.rstrip("\n") + "\n"
    if start is None:
        text = _append_block(text, body)
    else:
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].startswith("## ") or lines[i].startswith("# ")), len(lines))
        tail = "".join(lines[end:])
        text = "".join(lines[:start]) + body + ("\n" + tail if tail else "")
    with open(path, "w") as f:
        f.write(text)


def replace_marked_section(path, heading, start_marker, start_prefix, end_marker, section_text,
                           owner):
    """Put section_text (which starts with `heading`) into `path` between the markers:
    heading, start marker, the body, end marker. When the markers are there, only the text
    between them is replaced; otherwise the heading, markers and body are appended at the end.
    Everything outside the markers is left byte for byte as it was. A start marker is found by
    `start_prefix`; `owner` names the markers in the error for a start without an end."""
    body_lines = section_text.rstrip("\n").split("\n")
    if body_lines and body_lines[0] == heading:
        body_lines = body_lines[1:]
    while body_lines and not body_lines[0].strip():
        body_lines = body_lines[1:]
    body = "\n".join(body_lines) + "\n"
    text = _read(path)
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.startswith(start_prefix)), None)
    end = None
    if start is not None:
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].rstrip("\n") == end_marker), None)
    if start is not None and end is not None:
        text = "".join(lines[:start + 1]) + "\n" + body + "\n" + "".join(lines[end:])
    else:
        if start is not None:
            raise SystemExit(f"{path}: a {owner} start marker without an end marker; "
                             "fix the file by hand")
        text = _append_block(text, f"{heading}\n\n{start_marker}\n\n{body}\n{end_marker}\n")
    with open(path, "w") as f:
        f.write(text)
