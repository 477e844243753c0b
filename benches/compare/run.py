#!/usr/bin/env python3
"""pickleguard side by side with the other pickle scanners and with the loaders it protects.

One command (any Python 3.9+, standard library only):

    python3 benches/compare/run.py [--runs 5] [--timeout 300] [--doc docs/benchmarks.md]

does, in order:

1. setup
   * `cargo build --release -p pickleguard-cli` (the CLI measured: target/release/pickleguard);
   * `pip install .` of this repo into the test venv (~/.cache/pickleguard/venv, made by
     tools/test.sh; it has numpy, torch, scikit-learn, joblib) for `pickleguard.scan_file`
     and the native loads (--no-install keeps what is installed);
   * a separate benchmark venv (~/.cache/pickleguard/bench-venv) with the other scanners
     from PyPI: picklescan, fickling, modelscan, modelaudit and `pickleguard==1.0.1` (a
     different scanner that shares our name, module `pickle_scanner`, kept out of our venv).
     A package that does not install is reported and left out of the run;
2. data: benches/compare/make_files.py (test venv) writes the files once into
   ~/.cache/pickleguard/bench-data (a ~9 MB and a ~90 MB opcode-dense pickle, a ~105 MB
   blob-heavy pickle, a ~126 MB torch checkpoint, a RandomForest joblib file plain and
   zlib-compressed, a directory of 10,000 small pickles);
3. measurement, file by file, all tools interleaved round by round (so drifting load from
   other jobs hits every tool alike): each measurement is a fresh process. The CLIs (`cat`,
   `pickleguard scan`) are timed as whole processes; everything else by
   benches/compare/worker.py, which imports the tool, warms it up on a tiny pickle and times
   only the call. Up to --runs runs; a tool whose first run took > 10 s gets 3, > 60 s gets 1;
   a run is stopped at --timeout seconds and reported as "> 300 s";
4. report: results as JSON (--json, default target/bench-compare/results.json), markdown
   (target/bench-compare/side-by-side.md), and the "## Side by side" section of --doc is
   replaced by it (--doc '' leaves the docs alone).

Not part of the test suite. Nothing generated is untrusted; the scanners never see a
malicious file here (speed only; the verdicts are shown so a fast "error" is not mistaken
for a fast scan).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "pickleguard"
TEST_VENV = Path(os.environ.get("PICKLEGUARD_VENV", CACHE / "venv"))
BENCH_VENV = CACHE / "bench-venv"
DATA = CACHE / "bench-data"
SCANNERS = ["picklescan", "fickling", "modelscan", "modelaudit", "pickleguard==1.0.1"]
DIST = {"picklescan": "picklescan", "fickling": "fickling", "modelscan": "modelscan",
        "modelaudit": "modelaudit", "pickle_scanner": "pickleguard"}

# (tool id, label, venv) ; venv None = a command line, timed as a process
TOOLS = [
    ("cat", "floor: `cat` to /dev/null", None),
    ("read", "floor: Python `read()`", "test"),
    ("genops", "floor: `pickletools.genops` walk", "test"),
    ("pickle.load", "load: `pickle.load`", "test"),
    ("torch.load", "load: `torch.load(weights_only=False)`", "test"),
    ("torch.load(weights_only)", "load: `torch.load` (default, weights_only=True)", "test"),
    ("joblib.load", "load: `joblib.load`", "test"),
    ("pickleguard-cli", "**pickleguard CLI** (`pickleguard scan`)", None),
    ("pickleguard-py", "**pickleguard** `scan_file` (Python)", "test"),
    ("picklescan", "picklescan", "bench"),
    ("fickling", "fickling", "bench"),
    ("modelscan", "modelscan", "bench"),
    ("modelaudit", "modelaudit", "bench"),
    ("pickle_scanner", "pickleguard 1.0.1 from PyPI (`pickle_scanner`)", "bench"),
]
LABEL = {t: lab for t, lab, _ in TOOLS}
SCANNER_IDS = ["picklescan", "fickling", "modelscan", "modelaudit", "pickle_scanner"]
NATIVE = {"raw": "pickle.load", "dir": "pickle.load", "torch": "torch.load", "joblib": "joblib.load"}


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, **kw) -> subprocess.CompletedProcess:
    log("$", " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run([str(c) for c in cmd], **kw)


# ----------------------------------------------------------------------------------- setup


def setup(args) -> dict:
    notes: dict = {"unavailable": {}, "versions": {}}
    r = sh(["cargo", "build", "--release", "-p", "pickleguard-cli"], cwd=ROOT)
    if r.returncode != 0:
        sys.exit("cargo build --release -p pickleguard-cli failed")
    py = TEST_VENV / "bin" / "python"
    if not py.exists():
        sys.exit(f"{py} missing: run tools/test.sh once (it makes the test venv)")
    if not args.no_install:
        r = sh([py, "-m", "pip", "install", "-q", "."], cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
            notes["pg_install_error"] = " / ".join(tail)
            log("pip install . failed (measuring the pickleguard already installed, if any):", *tail, sep="\n")
    bpy = BENCH_VENV / "bin" / "python"
    if not bpy.exists():
        sh([sys.executable, "-m", "venv", BENCH_VENV], check=True)
        sh([bpy, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    for pkg in SCANNERS:
        dist = pkg.split("==")[0]
        want = pkg.split("==")[1] if "==" in pkg else None
        have = subprocess.run([str(bpy), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                              capture_output=True, text=True).stdout.strip()
        if have and (want is None or have == want):
            continue
        r = sh([bpy, "-m", "pip", "install", "-q", pkg], capture_output=True, text=True)
        if r.returncode != 0:
            notes["unavailable"][pkg] = (r.stderr or r.stdout).strip().splitlines()[-1:]
            log(f"could not install {pkg}: {notes['unavailable'][pkg]}")
    # versions, as each venv sees them
    code = ("import importlib.metadata as m, json, sys\nout={'python': sys.version.split()[0]}\n"
            "for d in sys.argv[1:]:\n  try: out[d]=m.version(d)\n  except Exception: pass\nprint(json.dumps(out))")
    for venv, dists in ((py, ["pickleguard", "torch", "numpy", "scikit-learn", "joblib"]),
                        (bpy, ["picklescan", "fickling", "modelscan", "modelaudit", "pickleguard"])):
        out = subprocess.run([str(venv), "-c", code, *dists], capture_output=True, text=True).stdout
        v = json.loads(out or "{}")
        if venv == bpy:
            v = {("pickleguard 1.0.1 (PyPI)" if k == "pickleguard" else k): x for k, x in v.items()}
            v["python (bench venv)"] = v.pop("python", "?")
        else:
            v["pickleguard (this repo)"] = v.pop("pickleguard", "not installed")
        notes["versions"].update(v)
    return notes


def make_data() -> list:
    py = TEST_VENV / "bin" / "python"
    r = sh([py, HERE / "make_files.py", DATA], capture_output=True, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        sys.exit("make_files.py failed")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------------------- measuring


def loadavg() -> float:
    return os.getloadavg()[0]


def run_process(cmd: list, timeout: float) -> dict:
    """Wall time, CPU time (user + sys, from wait4: load-independent), exit code and peak RSS
    of one process. Popen uses vfork/exec, so no pages of this process are counted."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            p.kill()
            os.wait4(p.pid, 0)
            p.returncode = -9
            return {"seconds": None, "error": "timeout", "verdict": ""}
        time.sleep(0.0005)
    dt = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    p.returncode = code
    return {"seconds": dt, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024, "code": code}


def measure_once(tool: str, f: dict, args) -> dict:
    pg = ROOT / "target" / "release" / "pickleguard"
    path, kind = f["path"], f["kind"]
    la = loadavg()
    if tool == "cat":
        if kind == "dir":
            cmd = ["sh", "-c", f"find {shlex.quote(path)} -type f -exec cat {{}} + > /dev/null"]
        else:
            cmd = ["sh", "-c", f"cat {shlex.quote(path)} > /dev/null"]
        r = run_process(cmd, args.timeout)
        r["verdict"] = "" if r.get("code", 0) == 0 else f"exit {r.get('code')}"
        r.pop("rss_mb", None)
    elif tool == "pickleguard-cli":
        r = run_process([str(pg), "scan", path, "--format", "json", "--output", "/dev/null", "--no-config"], args.timeout)
        if "code" in r:
            r["verdict"] = {0: "safe", 1: "flagged"}.get(r["code"], f"error (exit {r['code']})")
    else:
        venv = TEST_VENV if dict((t, v) for t, _, v in TOOLS)[tool] == "test" else BENCH_VENV
        cmd = [str(venv / "bin" / "python"), str(HERE / "worker.py"), tool, kind, path, str(args.timeout)]
        env = dict(os.environ)
        pre = None
        if venv == BENCH_VENV and args.mem_limit_gb:
            import resource

            lim = int(args.mem_limit_gb * (1 << 30))

            def pre():  # noqa: E306
                resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout + 180, env=env, preexec_fn=pre)
        except subprocess.TimeoutExpired:
            return {"seconds": None, "error": "timeout", "verdict": "", "load": la}
        m = re.search(r"^@@RESULT (.*)$", p.stdout, re.M)
        if m:
            r = json.loads(m.group(1))
        else:
            tail = (p.stderr or "").strip().splitlines()[-1:] or [f"exit {p.returncode}"]
            r = {"seconds": None, "error": f"crashed: {tail[0][:200]}", "verdict": ""}
            if p.returncode in (-9, 137) or "MemoryError" in (p.stderr or ""):
                r["error"] = "out of memory"
    r["load"] = la
    return r


def applicable(tool: str, kind: str) -> bool:
    if tool in ("torch.load", "torch.load(weights_only)"):
        return kind == "torch"
    if tool == "joblib.load":
        return kind == "joblib"
    if tool == "pickle.load":
        return kind in ("raw", "dir")
    if tool == "genops":
        return kind != "joblib"
    return True


def measure_file(f: dict, tools: list, args, prior: dict) -> dict:
    runs: dict = {t: [] for t in tools}
    want = {t: args.runs for t in tools}
    skipped: dict = {}
    # A tool that took > timeout/10 * 1.5 on the 9 MB dense file is not run on the 90 MB one
    # (it would time out): reported as "> timeout" with the measured 9 MB time.
    if f["name"] == "dense90.pkl" and not args.full:
        for t in tools:
            s = prior.get(t)
            if s and ((s.get("median") or 0) * 10 > args.timeout * 1.5 or s.get("error") == "timeout"):
                skipped[t] = f"not run: {s.get('median') or args.timeout:.0f} s on dense9.pkl predicts > {args.timeout:.0f} s"
                want[t] = 0
    for rnd in range(args.runs):
        for t in tools:
            if len(runs[t]) >= want[t]:
                continue
            r = measure_once(t, f, args)
            runs[t].append(r)
            s = r.get("seconds")
            log(f"  {f['name']:<16} {t:<26} run {rnd + 1}: " + (f"{s:9.3f} s" if s is not None else f"{r.get('error')}")
                + f"  {r.get('verdict', '')}  (load {r['load']:.1f})")
            if s is None:
                want[t] = len(runs[t])  # a timeout or an error is not repeated
            elif len(runs[t]) == 1:
                want[t] = 1 if s > 60 else 3 if s > 10 else args.runs
    out = {}
    for t in tools:
        rs = runs[t]
        ok = [r["seconds"] for r in rs if r.get("seconds") is not None]
        entry = {"runs": len(rs), "times": ok, "verdict": next((r.get("verdict") for r in rs if r.get("verdict")), ""),
                 "rss_mb": max((r.get("rss_mb") or 0) for r in rs) if rs else None,
                 "load": [r["load"] for r in rs]}
        errs = [r.get("error") for r in rs if r.get("error")]
        if t in skipped:
            entry.update(error="skipped", note=skipped[t])
        elif ok:
            entry.update(median=statistics.median(ok), min=min(ok), max=max(ok))
            cpus = [r["cpu"] for r in rs if r.get("cpu") is not None]
            if cpus:
                entry["cpu"] = statistics.median(cpus)
        elif errs:
            entry["error"] = errs[0]
        out[t] = entry
    return out


# --------------------------------------------------------------------------------- report


def machine() -> dict:
    m = {"nproc": os.cpu_count(), "platform": platform.platform()}
    try:
        m["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                m["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                m["mem_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return m


def fmt_s(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 0.001:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.0f} µs"


def fmt_ratio(x: float) -> str:
    return f"{x:,.0f}×" if x >= 10 else f"{x:.1f}×"


def cell(e: dict, timeout: float) -> str:
    if "median" in e:
        return fmt_s(e["median"])
    err = e.get("error", "")
    if err in ("timeout", "skipped"):
        return f"> {timeout:.0f} s"
    return "n/a" if err.startswith("n/a") else "error"


def render(res: dict, timeout: float) -> str:
    files, mach, notes = res["files"], res["machine"], res["notes"]
    L = []
    loads = [x for f in files for e in f["results"].values() for x in e["load"]]
    L.append(f"Command: `{res['command']}` (run {res['date']}, pickleguard {res['commit']}).")
    L.append("")
    L.append(f"Machine: {mach.get('cpu', '?')}, `nproc` = {mach['nproc']}, {mach.get('mem_gib', '?')} GiB; "
             f"shared with other jobs: 1-minute load average during the run "
             f"{min(loads):.1f}–{max(loads):.1f} (median {statistics.median(loads):.1f}) on {mach['nproc']} cores, "
             f"so absolute times are pessimistic and vary between runs; the tools were interleaved round by round "
             f"so the load hits them alike. Versions: "
             + ", ".join(f"{k} {v}" for k, v in notes["versions"].items()) + ".")
    if notes.get("unavailable"):
        L.append("")
        L.append("Not installable (left out): " + ", ".join(f"`{k}` ({' '.join(v)})" for k, v in notes["unavailable"].items()) + ".")
    if notes.get("pg_install_error"):
        L.append("")
        L.append(f"`pip install .` of this repo failed ({notes['pg_install_error']}); `scan_file` is the pickleguard "
                 f"already installed in the test venv ({notes['versions'].get('pickleguard (this repo)')}).")
    L.append("")
    L.append(f"Median wall time (runs: up to {res['runs']}; 3 for a tool whose first run took > 10 s, 1 for > 60 s; "
             f"stopped at {timeout:.0f} s). In parentheses: time ÷ pickleguard `scan_file`'s time on the same file.")
    L.append("")
    hdr = "| tool | " + " | ".join(f"`{f['name']}` {f['bytes'] / 1e6:,.0f} MB" + (f" ({f['files']:,} files)" if f.get("files") else "")
                                   for f in files) + " |"
    L.append(hdr)
    L.append("|---|" + "---:|" * len(files))
    for t, label, _ in TOOLS:
        cells, any_ = [], False
        for f in files:
            e = f["results"].get(t)
            if e is None:
                cells.append("")
                continue
            any_ = True
            c = cell(e, timeout)
            ref = f["results"].get("pickleguard-py", {}).get("median")
            if t in SCANNER_IDS + ["pickleguard-cli"] and "median" in e and ref:
                c += f" ({fmt_ratio(e['median'] / ref)})"
            elif t in SCANNER_IDS and e.get("error") in ("timeout", "skipped") and ref:
                c += f" (> {fmt_ratio(timeout / ref)})"
            cells.append(c)
        if any_:
            L.append(f"| {label} | " + " | ".join(cells) + " |")
    L.append("")
    # scan as a share of the native load
    L.append("pickleguard's scan as a share of the native load of the same file "
             "(`pickle.load`; `torch.load(weights_only=False)`; `joblib.load`):")
    L.append("")
    L.append("| file | native load: wall (CPU) | CLI scan: wall (CPU) | CLI / load: wall (CPU) "
             "| `scan_file`: wall (CPU) | `scan_file` / load: wall (CPU) |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for f in files:
        res_ = f["results"]
        nat = res_.get(NATIVE[f["kind"]], {})
        if not nat.get("median"):
            continue

        def both(e: dict) -> str:
            return f"{fmt_s(e.get('median'))} ({fmt_s(e.get('cpu'))})" if e.get("median") else "–"

        def share(e: dict) -> str:
            if not e.get("median"):
                return "–"
            w = 100 * e["median"] / nat["median"]
            c = f" ({100 * e['cpu'] / nat['cpu']:.1f} %)" if e.get("cpu") and nat.get("cpu") else ""
            return f"{w:.1f} %{c}"
        cli, py = res_.get("pickleguard-cli", {}), res_.get("pickleguard-py", {})
        L.append(f"| `{f['name']}` | {both(nat)} | {both(cli)} | {share(cli)} | {both(py)} | {share(py)} |")
    L.append("")
    L.append("<details><summary>Per file: median, min–max, runs, MB/s, peak RSS, and what each tool said</summary>")
    L.append("")
    for f in files:
        mb = f["bytes"] / 1e6
        L.append(f"`{f['name']}` ({f['kind']}, {f['bytes']:,} bytes" + (f", {f['files']:,} files" if f.get("files") else "") + ")")
        L.append("")
        L.append("| tool | median | min–max | runs | CPU (median) | MB/s | × scan_file | peak RSS | result |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        ref = f["results"].get("pickleguard-py", {}).get("median")
        for t, label, _ in TOOLS:
            e = f["results"].get(t)
            if e is None:
                continue
            if "median" in e:
                rng = f"{fmt_s(e['min'])}–{fmt_s(e['max'])}"
                mbs = f"{mb / e['median']:,.1f}" if e["median"] > 0 else ""
                rat = fmt_ratio(e["median"] / ref) if ref and t not in ("cat", "read", "genops") else ""
            else:
                rng = mbs = rat = ""
            rss = f"{e['rss_mb']:,.0f} MB" if e.get("rss_mb") else ""
            what = e.get("verdict") or ""
            if e.get("error"):
                what = e.get("note") or e["error"]
            cpu = fmt_s(e["cpu"]) if e.get("cpu") is not None else ""
            L.append(f"| {label} | {cell(e, timeout)} | {rng} | {e['runs']} | {cpu} | {mbs} | {rat} | {rss} | {what} |")
        L.append("")
    L.append("</details>")
    return "\n".join(L)


def targets(res: dict) -> list:
    """The issue-7 targets, checked on the medians of this run: wall time (what the issue
    asks) and CPU time (what the shared machine's load does not inflate)."""
    out = []
    by = {f["name"]: f["results"] for f in res["files"]}
    kinds = {f["name"]: f["kind"] for f in res["files"]}
    t = res["timeout"]

    def ratio(a: dict, b: dict, key: str):
        if a.get(key) and b.get(key):
            return a[key] / b[key]
        return None

    for fname in ("dense9.pkl", "dense90.pkl"):
        r = by.get(fname)
        if not r:
            continue
        for ref in ("pickleguard-cli", "pickleguard-py"):
            pg = r.get(ref, {})
            if not pg.get("median"):
                continue
            for other, need in (("picklescan", 100), ("modelaudit", 500)):
                o = r.get(other, {})
                if "median" in o:
                    w, c = ratio(o, pg, "median"), ratio(o, pg, "cpu")
                    val = f"{fmt_ratio(w)}" + (f" ({fmt_ratio(c)})" if c else "")
                    out.append((f"`{fname}`: {LABEL[ref]} ≥ {need}× faster than {other}", val, w >= need, c is None or c >= need))
                elif o.get("error") in ("timeout", "skipped"):
                    w = t / pg["median"]
                    out.append((f"`{fname}`: {LABEL[ref]} ≥ {need}× faster than {other}", f"> {fmt_ratio(w)}",
                                True if w >= need else None, None))
            nat = r.get("pickle.load", {})
            w, c = ratio(pg, nat, "median"), ratio(pg, nat, "cpu")
            if w:
                out.append((f"`{fname}`: {LABEL[ref]} ≤ 5 % of `pickle.load`",
                            f"{100 * w:.1f} %" + (f" ({100 * c:.1f} %)" if c else ""), w <= 0.05, c is None or c <= 0.05))
    for fname, r in by.items():
        kind = kinds[fname]
        if kind not in ("torch", "joblib"):
            continue
        nat = r.get(NATIVE[kind], {})
        for ref in ("pickleguard-cli", "pickleguard-py"):
            pg = r.get(ref, {})
            w, c = ratio(pg, nat, "median"), ratio(pg, nat, "cpu")
            if w:
                out.append((f"`{fname}`: {LABEL[ref]} ≤ 1 % of `{NATIVE[kind]}`",
                            f"{100 * w:.2f} %" + (f" ({100 * c:.2f} %)" if c else ""), w <= 0.01, c is None or c <= 0.01))
    return out


def render_targets(res: dict) -> str:
    yn = {True: "yes", False: "**no**", None: "?"}
    L = ["Issue 7's targets on this run (wall-time medians; CPU time in parentheses):", "",
         "| target | this run | met (wall) | met (CPU) |", "|---|---:|:---:|:---:|"]
    for what, val, ok_wall, ok_cpu in targets(res):
        L.append(f"| {what} | {val} | {yn[ok_wall]} | {yn[ok_cpu]} |")
    return "\n".join(L)


BEGIN, END = "<!-- benches/compare/run.py: begin -->", "<!-- benches/compare/run.py: end -->"


def write_doc(doc: Path, body: str) -> None:
    """Replace the generated part of the "## Side by side" section (between the markers);
    text after the end marker (the analysis, written by hand) is kept. The rest of the
    file is never touched. Re-read right before writing: others edit the same file."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    generated = BEGIN + "\n" + body.strip() + "\n" + END
    m = re.search(r"^## Side by side[^\n]*\n", text, re.M)
    if not m:
        doc.write_text(text.rstrip("\n") + "\n\n## Side by side\n\n" + generated + "\n")
        return
    nxt = re.search(r"^## ", text[m.end():], re.M)
    end = m.end() + nxt.start() if nxt else len(text)
    sec = text[m.end():end]
    if BEGIN in sec and END in sec:
        sec = sec[:sec.index(BEGIN)] + generated + sec[sec.index(END) + len(END):]
    else:
        sec = "\n" + generated + "\n" + sec
    doc.write_text(text[:m.end()] + sec + text[end:])


INTRO = """\
pickleguard against the scanners people use today and against the loads it protects, in one
run on the same files. Reproduce with (a few minutes of setup the first time: release build,
`pip install .`, a separate venv with the other scanners from PyPI, files made with numpy,
torch, scikit-learn and joblib into `~/.cache/pickleguard/bench-data`; then up to an hour of
measuring, most of it spent waiting for the slow scanners):

```sh
python3 benches/compare/run.py            # --runs 5 --timeout 300; --only dense9.pkl,...; --doc ''
```

How it measures: every measurement is a fresh process. `cat` and the pickleguard CLI
(`pickleguard scan FILE --format json --output /dev/null --no-config`, release build) are
timed as whole processes, start-up included. Everything else (`scan_file`, the other
scanners through their Python APIs, the loads, the floors) is timed in-process around the
call only, after the imports and a warm-up scan of a tiny pickle: that leaves out their
start-up (modelaudit's import alone takes seconds), which favours them. The other scanners
run with their defaults (modelaudit with its result cache off). The pickleguard CLI and
`scan_file` use the default `ml` mode.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--only", default="", help="comma-separated file names (dense9.pkl,small/,...)")
    ap.add_argument("--tools", default="", help="comma-separated tool ids (default: all)")
    ap.add_argument("--no-install", action="store_true", help="do not `pip install .` this repo into the test venv")
    ap.add_argument("--no-setup", action="store_true", help="skip the build and the installs")
    ap.add_argument("--full", action="store_true", help="run every tool on dense90.pkl even when dense9.pkl predicts a timeout")
    ap.add_argument("--mem-limit-gb", type=float, default=10.0, help="address-space limit of the other scanners (0: none)")
    ap.add_argument("--json", default=str(ROOT / "target" / "bench-compare" / "results.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--render", metavar="JSON", help="only re-render the report (and --doc) from a results file")
    args = ap.parse_args()

    if args.render:
        res = json.loads(Path(args.render).read_text())
        body = INTRO + "\n" + render(res, res["timeout"]) + "\n\n" + render_targets(res) + "\n"
        print(body)
        if args.doc:
            write_doc(Path(args.doc), body)
        return 0
    notes = {"unavailable": {}, "versions": {}} if args.no_setup else setup(args)
    files = make_data()
    if args.only:
        keep = set(args.only.split(","))
        files = [f for f in files if f["name"] in keep]
    tools = [t for t, _, _ in TOOLS if not args.tools or t in args.tools.split(",")]
    tools = [t for t in tools if not any(DIST.get(t) and k.startswith(DIST[t]) and (t != "pickle_scanner" or "1.0.1" in k)
                                         for k in notes["unavailable"])]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "crates", "python"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    res = {"command": "python3 benches/compare/run.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""),
           "date": datetime.date.today().isoformat(), "commit": commit + (" + uncommitted changes" if dirty else ""),
           "machine": machine(), "notes": notes, "runs": args.runs, "timeout": args.timeout, "files": []}
    log(f"machine: {res['machine']}  load {os.getloadavg()}")
    prior: dict = {}
    for f in files:
        log(f"== {f['name']} ({f['bytes'] / 1e6:.1f} MB)")
        ts = [t for t in tools if applicable(t, f["kind"])]
        r = measure_file(f, ts, args, prior)
        if f["name"] == "dense9.pkl":
            prior = r
        res["files"].append({**f, "results": r})
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))  # partial results survive a stop
    body = INTRO + "\n" + render(res, args.timeout) + "\n\n" + render_targets(res) + "\n"
    md = Path(args.json).with_name("side-by-side.md")
    md.write_text(body)
    print(body)
    if args.doc:
        write_doc(Path(args.doc), body)
        log(f"wrote the 'Side by side' section of {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
