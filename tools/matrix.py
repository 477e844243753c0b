#!/usr/bin/env python3
"""The version matrix: the benign corpus written by several pinned sets of library versions,
each with and without pyarrow, scanned, loaded, and turned into globals with provenance.

    python3 tools/matrix.py                       # every cell of tools/matrix/*.txt
    python3 tools/matrix.py --cells current       # some cells
    python3 tools/matrix.py --no-install          # use the cells' environments as they are
    python3 tools/matrix.py --no-install --scan-only   # judge the corpora of the last run again

For each cell ``tools/matrix/CELL.txt`` (a pip requirements file):

1. a virtual environment ``~/.cache/pickleguard/matrix/CELL`` (PICKLEGUARD_MATRIX to move it)
   is made and filled from ``tools/matrix/CELL.lock`` when that exists, else from CELL.txt,
   after which the exact versions are written back to CELL.lock (commit it: the cell is then
   reproducible);
2. ``tests/corpus/gen_benign.py`` writes the corpus in that environment twice: as installed,
   and with pyarrow hidden (``PICKLEGUARD_HIDE_PYARROW=1``: pandas then stores strings as it
   does for users without pyarrow) — the variants ``CELL`` and ``CELL-noarrow``;
3. ``tests/corpus/verify_benign.py`` loads every file with its own loader there;
4. ``pickleguard scan --format json`` judges every file (PICKLEGUARD_BIN, else the freshest
   target/ build);
5. ``tools/collect_globals.py`` records the globals each file makes CPython import.

Results go to ``--out`` (default ``target/matrix``): per variant ``corpus/``, ``scan.json``,
``globals.json``, ``refused.json``; for the whole run, the table of ``docs/coverage.md``
(artifacts per library and version, and how many the scan refused; the target is zero).

``--profile`` regenerates the ``ml`` profile from the matrix, the one command after a library
release: ``tools/benign_globals.json`` becomes every global of every variant with its
provenance (the variants and library versions that wrote it), ``tools/class_facts.json``
what each name is as each cell imports it (the oldest cell first, then the current one),
``policies/ml_corpus.toml`` is rendered from both (tools/gen_profile.py: an operation whose
custom method has no review is left out and listed), and every corpus is judged again:

    python3 tools/matrix.py --no-install --scan-only --profile
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from eval import find_bin  # noqa: E402  (the same binary choice as the detection figures)
CELLS_DIR = ROOT / "tools" / "matrix"
ENVS = Path(os.environ.get("PICKLEGUARD_MATRIX", Path.home() / ".cache" / "pickleguard" / "matrix"))
# The distributions whose versions name a cell's column in docs/coverage.md.
REPORTED = ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "torch", "torchvision", "transformers",
            "xgboost", "lightgbm", "catboost", "statsmodels", "sympy", "networkx", "dill", "cloudpickle",
            "accelerate", "peft", "timm", "sentence-transformers", "lightning", "python-dateutil", "joblib")


def run(cmd, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run([str(c) for c in cmd], **kw)


def ensure_env(cell: str, install: bool) -> Path:
    env = ENVS / cell
    py = env / "bin" / "python"
    if not install:
        if not py.exists():
            raise SystemExit(f"{env} does not exist: run without --no-install first")
        return py
    if not py.exists():
        run([sys.executable, "-m", "venv", env], check=True)
        run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    lock = CELLS_DIR / f"{cell}.lock"
    src = lock if lock.exists() else CELLS_DIR / f"{cell}.txt"
    run([py, "-m", "pip", "install", "-q", "-r", src], check=True, cwd=CELLS_DIR)
    frozen = run([py, "-m", "pip", "freeze", "--exclude-editable"], check=True, capture_output=True,
                 text=True).stdout
    lock.write_text(f"# Pinned versions of matrix cell {cell} (tools/matrix/{cell}.txt), written by "
                    "tools/matrix.py.\n" + frozen)
    return py


def versions(py: Path) -> dict[str, str]:
    out = run([py, "-m", "pip", "list", "--format", "json"], check=True, capture_output=True, text=True).stdout
    return {d["name"].lower(): d["version"] for d in json.loads(out)}


def variant(py: Path, name: str, hide_arrow: bool, out: Path, pg_bin: str, scan_only: bool) -> dict:
    vdir = out / name
    corpus = vdir / "corpus"
    vdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PICKLEGUARD_HIDE_PYARROW="1" if hide_arrow else "0")
    t = time.time()
    state = vdir / "state.json"
    if scan_only and state.exists():
        result = json.loads(state.read_text())
    else:
        gen = run([py, ROOT / "tests" / "corpus" / "gen_benign.py", "--out", corpus], env=env,
                  capture_output=True, text=True)
        (vdir / "generate.log").write_text(gen.stdout + gen.stderr)
        ver = run([py, ROOT / "tests" / "corpus" / "verify_benign.py", corpus], env=env, capture_output=True,
                  text=True)
        (vdir / "verify.log").write_text(ver.stdout + ver.stderr)
        glob = run([py, ROOT / "tools" / "collect_globals.py", corpus, "--out", vdir / "globals.json"],
                   env=env, capture_output=True, text=True)
        (vdir / "collect.log").write_text(glob.stdout + glob.stderr)
        result = {"variant": name, "generate_rc": gen.returncode, "verify_rc": ver.returncode,
                  "collect_rc": glob.returncode, "seconds": round(time.time() - t)}
        state.write_text(json.dumps(result) + "\n")
    # The judgement is the only step that depends on pickleguard itself: always made anew.
    scan = run([pg_bin, "scan", corpus, "--format", "json", "--jobs", "2"], capture_output=True)
    (vdir / "scan.json").write_bytes(scan.stdout)
    return result


def summarize(out: Path, runs: list[dict]) -> tuple[dict, list[dict]]:
    """Merge every variant's globals (with provenance) and count refusals per library."""
    rows = []
    sources = []
    for r in runs:
        vdir = out / r["variant"]
        manifest = json.loads((vdir / "corpus" / "manifest.json").read_text())
        by_file = {e["file"]: e for e in manifest}
        reports = {}
        if (vdir / "scan.json").stat().st_size:
            for f in json.loads((vdir / "scan.json").read_text())["files"]:
                rel = os.path.relpath(f["path"], vdir / "corpus")
                reports[rel] = f
        per_lib: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        refused = []
        for rel, e in by_file.items():
            if e.get("custom"):
                continue
            lib = e["library"]
            per_lib[lib][0] += 1
            rep = reports.get(rel)
            if rep is None or not rep["is_safe"]:
                per_lib[lib][1] += 1
                refused.append({"file": rel, "findings": [f["description"][:160] for f in
                                                          (rep or {}).get("findings", [])][:3]})
        (vdir / "refused.json").write_text(json.dumps(refused, indent=1) + "\n")
        for lib, (n, bad) in sorted(per_lib.items()):
            rows.append({"variant": r["variant"], "library": lib, "version": r["versions"].get(
                _dist(lib), "") if r.get("versions") else "", "artifacts": n, "refused": bad})
        gpath = vdir / "globals.json"
        if gpath.exists():
            sources.append((r["variant"], json.loads(gpath.read_text()), r.get("versions", {})))
    return merge_globals(sources), rows


def merge_globals(sources: list[tuple[str, dict, dict]]) -> dict:
    """One table of globals from several corpora: ``sources`` holds (variant, the corpus's
    collect_globals.py table, its library versions). Uses, libraries and argument shapes are
    united; ``provenance`` names each library version and ``variants`` each corpus that wrote
    the global, so every profile entry generated from it can say where it came from."""
    merged: dict[str, dict] = {}
    for variant, table, vers in sources:
        for key, g in table.items():
            m = merged.setdefault(key, {k: v for k, v in g.items()
                                        if k not in ("files", "arg_shapes", "arg_shapes_more")})
            for field in ("uses", "libraries", "containers"):
                m[field] = sorted(set(m.get(field, [])) | set(g.get(field, [])))
            shapes = m.setdefault("arg_shapes", [])
            for sh in g.get("arg_shapes", []):
                if sh not in shapes:
                    shapes.append(sh)
            if not shapes:
                del m["arg_shapes"]
            if g.get("result_called"):
                m["result_called"] = True
            m["files"] = m.get("files", 0) + g.get("files", 0)
            m.setdefault("variants", [])
            if variant not in m["variants"]:
                m["variants"].append(variant)
            prov = m.setdefault("provenance", [])
            for lib in g.get("libraries", []):
                item = f"{lib} {vers.get(_dist(lib), '')}".strip()
                if item not in prov:
                    prov.append(item)
            prov.sort()
    return merged


def _dist(library: str) -> str:
    return {"sklearn": "scikit-learn", "sentence_transformers": "sentence-transformers",
            "dateutil": "python-dateutil", "stdlib": "python"}.get(library, library)


def write_coverage(rows: list[dict], runs: list[dict]) -> None:
    doc = ROOT / "docs" / "coverage.md"
    lines = [
        "# Coverage: what real artifacts the `ml` profile accepts",
        "",
        "Made by `python3 tools/matrix.py` (the version matrix: `tools/matrix/*.txt`, pinned in",
        "`tools/matrix/*.lock`). Each cell writes the benign corpus (`tests/corpus/gen_benign.py`)",
        "with its own library versions, with and without pyarrow (`-noarrow`), loads every file",
        "with its own loader, and scans it with `pickleguard scan` in `ml` mode. *Refused* counts the",
        "artifacts the scan did not call safe; the target is 0. The deliberately unknown custom",
        "class is left out. CI runs the `current` cell (requirements-lock.txt) through",
        "`tests/test_benign_corpus.py`.",
        "",
        "## Cells",
        "",
        "| variant | " + " | ".join(REPORTED[:10]) + " | loads | seconds |",
        "|---|" + "---|" * (len(REPORTED[:10]) + 2),
    ]
    for r in runs:
        v = r.get("versions", {})
        lines.append(f"| {r['variant']} | " + " | ".join(v.get(d, "—") if not (d == "pyarrow" and
                                                                              r["variant"].endswith("-noarrow"))
                                                        else "hidden" for d in REPORTED[:10])
                     + f" | {'ok' if r['verify_rc'] == 0 else 'FAILED'} | {r['seconds']} |")
    lines += ["", "## Artifacts and refusals", "", "| variant | library | version | artifacts | refused |",
              "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['variant']} | {row['library']} | {row['version']} | {row['artifacts']} | "
                     f"{row['refused']} |")
    total = sum(r["artifacts"] for r in rows)
    bad = sum(r["refused"] for r in rows)
    lines += ["", f"In all: {total} artifacts, {bad} refused ({100.0 * bad / max(total, 1):.1f} %).", ""]
    doc.write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", help="comma-separated cells (default: every tools/matrix/*.txt)")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "matrix")
    ap.add_argument("--no-install", action="store_true", help="use the cells' environments as they are")
    ap.add_argument("--no-arrow-variant", action="store_true", help="skip the variants with pyarrow hidden")
    ap.add_argument("--profile", action="store_true",
                    help="regenerate the profile from the matrix (tools/benign_globals.json, "
                         "tools/class_facts.json, policies/ml_corpus.toml), rebuild, judge again")
    ap.add_argument("--scan-only", action="store_true",
                    help="reuse corpora and globals a previous run made in --out; only scan again")
    args = ap.parse_args(argv)
    cells = args.cells.split(",") if args.cells else sorted(p.stem for p in CELLS_DIR.glob("*.txt"))
    pg_bin = find_bin()
    runs = []
    for cell in cells:
        py = ensure_env(cell, not args.no_install)
        vers = versions(py)
        for hide in (False, True):
            if hide and args.no_arrow_variant:
                continue
            name = cell + ("-noarrow" if hide else "")
            r = variant(py, name, hide, args.out, pg_bin, args.scan_only)
            r["versions"] = vers
            runs.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "versions"}), file=sys.stderr, flush=True)
    merged, rows = summarize(args.out, runs)
    if args.profile:
        # The profile's input: every global of every variant, with its provenance; the facts
        # of each name as the oldest cell that has it and then the current one import it.
        (ROOT / "tools" / "benign_globals.json").write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
        for cell in sorted(cells, key=lambda c: c != "previous"):
            run([ensure_env(cell, False), ROOT / "tools" / "gen_profile.py", "--introspect", "--keep-missing",
                 "--facts-only"], check=True)
        run([sys.executable, ROOT / "tools" / "gen_profile.py"], check=True)
        # The profile is compiled into the binary: build it again, then judge with it.
        run(["cargo", "build", "-q", "-p", "pickleguard-cli"], cwd=ROOT, check=True)
        pg_bin = os.environ.get("PICKLEGUARD_BIN") or str(ROOT / "target" / "debug" / "pickleguard")
        for r in runs:
            corpus = args.out / r["variant"] / "corpus"
            scan = run([pg_bin, "scan", corpus, "--format", "json", "--jobs", "2"], capture_output=True)
            (args.out / r["variant"] / "scan.json").write_bytes(scan.stdout)
        merged, rows = summarize(args.out, runs)
    write_coverage(rows, runs)
    failed = [r["variant"] for r in runs if r["verify_rc"] != 0]
    if failed:
        print("files that do not load with their own loader in: " + ", ".join(failed), file=sys.stderr)
    refused = sum(r["refused"] for r in rows)
    print(f"{sum(r['artifacts'] for r in rows)} artifacts, {refused} refused", file=sys.stderr)
    return 1 if failed or refused else 0


if __name__ == "__main__":
    sys.exit(main())
