#!/usr/bin/env python3
"""One timed measurement for benches/compare/run.py, run in a fresh interpreter each time.

    PYTHON worker.py TOOL KIND PATH TIMEOUT_S

TOOL is one of the names in TOOLS below; KIND is raw | torch | joblib | dir. The worker
imports the tool and warms it up on a tiny pickle of its own (lazy imports, caches of code
paths), then times only the call on PATH (time.perf_counter) with an alarm at TIMEOUT_S.
It prints one JSON line: seconds (null on timeout/error), verdict, error, peak RSS (MB, the
whole process, imports included).

The scanners are run through their Python APIs with the options their command lines use
by default (modelaudit: use_cache=False, so a repeated run is not answered from its cache).
Interpreter start-up and imports are not timed: that favours the slow-starting tools.
"""
from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import sys
import tempfile
import time
import zipfile
from typing import Callable, List

os.environ.setdefault("PROMPTFOO_DISABLE_TELEMETRY", "1")  # modelaudit
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_COLOR", "1")


def files_of(path: str) -> List[str]:
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        out.extend(os.path.join(root, f) for f in sorted(files))
    return out


# --- each tool: setup() -> (fn(path, kind) -> verdict string) --------------------------------


def t_read():
    def run(path, kind):
        n = 0
        for f in files_of(path) if kind == "dir" else [path]:
            with open(f, "rb") as fh:
                n += len(fh.read())
        return f"{n} bytes"
    return run


def t_genops():
    import pickletools

    def walk(data: bytes) -> int:
        # every pickle in the stream, as the loaders read concatenated pickles
        import io
        bio, n = io.BytesIO(data), 0
        while bio.tell() < len(data):
            for _ in pickletools.genops(bio):
                n += 1
        return n

    def run(path, kind):
        if kind == "joblib":
            raise NotImplementedError("n/a: joblib interleaves raw array bytes with the pickle")
        n = 0
        if kind == "torch":
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    if name.endswith(".pkl"):
                        n += walk(z.read(name))
        else:
            for f in files_of(path) if kind == "dir" else [path]:
                with open(f, "rb") as fh:
                    n += walk(fh.read())
        return f"{n} opcodes"
    return run


def t_pickle_load():
    import numpy  # noqa: F401  (blobs.pkl holds arrays: import outside the timing)

    def run(path, kind):
        for f in files_of(path) if kind == "dir" else [path]:
            with open(f, "rb") as fh:
                pickle.load(fh)
        return "loaded"
    return run


def t_torch_load(weights_only: bool):
    def setup():
        import torch

        def run(path, kind):
            torch.load(path, weights_only=weights_only)
            return "loaded"
        return run
    return setup


def t_joblib_load():
    import joblib
    import sklearn.ensemble  # noqa: F401

    def run(path, kind):
        joblib.load(path)
        return "loaded"
    return run


def t_pg_py():
    import pickleguard

    def run(path, kind):
        bad = 0
        fs = files_of(path) if kind == "dir" else [path]
        for f in fs:
            r = pickleguard.scan_file(f)
            if not r.is_safe:
                bad += 1
                worst = r.risk_level
        if kind == "dir":
            return f"{bad} of {len(fs)} flagged" if bad else "safe"
        return f"flagged ({worst})" if bad else "safe"
    return run


def t_picklescan():
    from picklescan.scanner import scan_directory_path, scan_file_path

    def run(path, kind):
        r = scan_directory_path(path) if kind == "dir" else scan_file_path(path)
        if r.scan_err:
            return f"error (scan_err), {r.infected_files} infected"
        return f"flagged ({r.infected_files} files, {r.issues_count} globals)" if r.infected_files else "safe"
    return run


def t_fickling():
    import fickling
    from fickling.analysis import Severity

    def one(f):
        if zipfile.is_zipfile(f):
            return list(fickling.scan_zip_archive(f, graceful=True).values())
        return [fickling.scan_file(f, graceful=True)]

    def run(path, kind):
        fs = files_of(path) if kind == "dir" else [path]
        bad, worst, errs = 0, None, 0
        for f in fs:
            rs = one(f)
            errs += sum(1 for r in rs if r.errors)
            sev = [r.severity for r in rs if r.severity != Severity.LIKELY_SAFE]
            if sev or not rs:
                bad += 1
                worst = max(sev, key=lambda s: s.value).name if sev else "no pickle member scanned"
        if kind == "dir":
            return (f"{bad} of {len(fs)} flagged" if bad else "safe") + (f", {errs} errors" if errs else "")
        return (f"flagged ({worst})" if bad else "safe") + (f", {errs} errors" if errs else "")
    return run


def t_modelscan():
    from modelscan.modelscan import ModelScan
    from modelscan.settings import DEFAULT_SETTINGS

    def run(path, kind):
        res = ModelScan(settings=DEFAULT_SETTINGS).scan(path)
        s = res.get("summary", {})
        n, errs = s.get("total_issues", 0), res.get("errors", [])
        sk = s.get("skipped", {}).get("total_skipped", 0)
        sc = s.get("scanned", {}).get("total_scanned", 0)
        v = f"flagged ({n} issues)" if n else ("safe" if sc else "nothing scanned")
        return v + (f", {len(errs)} errors" if errs else "") + (f", {sk} skipped" if sk else "")
    return run


def t_modelaudit():
    from modelaudit.core import scan_model_directory_or_file

    def run(path, kind):
        r = scan_model_directory_or_file(path, use_cache=False)
        sev = {}
        for i in r.issues:
            k = getattr(i.severity, "value", str(i.severity))
            sev[k] = sev.get(k, 0) + 1
        bad = {k: v for k, v in sev.items() if k in ("critical", "warning")}
        v = ("flagged (" + ", ".join(f"{v} {k}" for k, v in sorted(bad.items())) + ")") if bad else "safe"
        return v + (", errors" if r.has_errors else "")
    return run


def t_pickle_scanner():
    from pickle_scanner import PickleScanner

    scanner = PickleScanner()

    def run(path, kind):
        fs = files_of(path) if kind == "dir" else [path]
        bad, worst, errs, perr = 0, 0, 0, 0
        for f in fs:
            r = scanner.scan_file(f)
            if not r.success or r.report is None:
                errs += 1
                continue
            perr += len(r.report.errors)  # it skips what it cannot parse and goes on
            sev = [x.severity for x in r.report.findings if x.severity.value >= 3]  # HIGH, CRITICAL
            if sev:
                bad += 1
                worst = max(worst, max(s.value for s in sev))
        name = {3: "HIGH", 4: "CRITICAL"}.get(worst, "")
        if kind == "dir":
            v = f"{bad} of {len(fs)} flagged" if bad else "safe"
        else:
            v = f"flagged ({name})" if bad else "safe"
        return v + (f", {errs} errors" if errs else "") + (f", {perr:,} parse errors" if perr else "")
    return run


TOOLS: dict = {
    "read": t_read,
    "genops": t_genops,
    "pickle.load": t_pickle_load,
    "torch.load": t_torch_load(False),
    "torch.load(weights_only)": t_torch_load(True),
    "joblib.load": t_joblib_load,
    "pickleguard-py": t_pg_py,
    "picklescan": t_picklescan,
    "fickling": t_fickling,
    "modelscan": t_modelscan,
    "modelaudit": t_modelaudit,
    "pickle_scanner": t_pickle_scanner,
}
LOADS = {"read", "genops", "pickle.load", "torch.load", "torch.load(weights_only)", "joblib.load"}


class Timeout(BaseException):
    pass


def main() -> int:
    tool, kind, path, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    out = {"tool": tool, "seconds": None, "verdict": "", "error": ""}
    try:
        fn: Callable = TOOLS[tool]()
        if tool not in LOADS:  # warm-up on a tiny clean pickle (imports, lazy registries)
            with tempfile.TemporaryDirectory() as d:
                tiny = os.path.join(d, "tiny.pkl")
                with open(tiny, "wb") as fh:
                    pickle.dump({"a": [1, 2.5, "x"]}, fh, protocol=4)
                fn(tiny, "raw")

        def alarm(*_):
            raise Timeout()
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            verdict = fn(path, kind)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out["seconds"], out["cpu"], out["verdict"] = dt, cpu, verdict
    except Timeout:
        out["error"] = "timeout"
    except MemoryError:
        out["error"] = "out of memory"
    except NotImplementedError as e:
        out["error"] = str(e)
    except Exception as e:  # the tool failed on this file: report it, do not crash the run
        out["error"] = f"{type(e).__name__}: {str(e)[:200]}"
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.flush()
    print("\n@@RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
