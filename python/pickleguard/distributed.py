"""Scan a tree, a hub or a list of files/URLs on a ``dask.distributed`` cluster (docs/python.md).

The client plans the scan exactly as ``pickleguard scan`` would (same flags, same policy
resolution, same walk), cuts the files into batches sized for throughput, runs
:func:`scan_batch` on the workers and merges the entries into one report: the same JSON
document as the command line's, renderable as SARIF or text with :func:`render`.

:func:`scan_batch` is plain Python over the public extension: Ray, Spark or a process pool
call it the same way (docs/python.md has a Ray example). A batch either returns every file's
complete entry or nothing: a worker that dies mid-file loses the whole batch, which is run
again elsewhere; a batch that keeps failing is reported file by file as errors (not safe).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import urllib.parse
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import _native

__all__ = ["scan", "scan_batch", "plan", "make_batches", "merge", "render", "Progress"]

#: Called as batches finish: (files done, files in all, bytes done, bytes in all).
Progress = Callable[[int, int, int, int], None]

#: A batch closes at this many bytes or files, whichever comes first: small files are grouped
#: so that each task outweighs its scheduling cost (~1 ms per task on dask); a big model file
#: makes a batch of its own.
BATCH_BYTES = 64 << 20
BATCH_FILES = 256

#: Times a batch is submitted again after dask gave up on it (a KilledWorker after
#: ``distributed.scheduler.allowed-failures`` worker deaths, or an error in the task).
RESUBMITS = 2

def _is_url(s: str) -> bool:
    scheme = urllib.parse.urlsplit(s).scheme
    return len(scheme) > 1 and "://" in s


def _argv(paths: Sequence[str], *, mode: Optional[str], allow: Iterable[str],
          policy: Iterable[Union[str, "os.PathLike[str]"]], fail_on: Optional[str],
          no_config: bool, include: Iterable[str], exclude: Iterable[str],
          follow_symlinks: bool, cache: Optional[str], max_size: Optional[int] = None,
          timeout: Optional[float] = None) -> List[str]:
    argv = ["pickleguard", "scan"]
    if mode:
        argv += ["--mode", mode]
    for a in allow:
        argv += ["--allow", a]
    for p in policy:
        argv += ["--policy", os.fspath(p)]
    if fail_on:
        argv += ["--fail-on", fail_on]
    if no_config:
        argv.append("--no-config")
    for g in include:
        argv += ["--include", g]
    for g in exclude:
        argv += ["--exclude", g]
    if follow_symlinks:
        argv.append("--follow-symlinks")
    if cache:
        argv += ["--cache", cache]
    if max_size is not None:
        argv += ["--max-size", str(max_size)]
    if timeout is not None:
        argv += ["--timeout", repr(float(timeout))]
    # `--` keeps a path that starts with a dash a path.
    return argv + ["--", *paths]


def plan(argv: List[str], urls: Sequence[str] = ()) -> Dict[str, Any]:
    """Plan ``pickleguard scan`` arguments (``argv[0]`` is the program name): the files, the
    policy snapshot, the output settings. ``urls`` are added as targets read by the worker."""
    p: Dict[str, Any] = json.loads(_native.plan_scan(argv))
    for u in urls:
        p["targets"].append({"display": u, "url": u, "size": 0})
    return p


def make_batches(targets: List[Dict[str, Any]], batch_bytes: int = BATCH_BYTES,
                 batch_files: int = BATCH_FILES) -> List[List[Dict[str, Any]]]:
    """Group targets in path order into batches of at most ``batch_files`` files and about
    ``batch_bytes`` bytes (a file larger than that is a batch of its own)."""
    batches: List[List[Dict[str, Any]]] = []
    cur: List[Dict[str, Any]] = []
    size = 0
    for t in targets:
        n = max(int(t.get("size") or 0), 1)
        if cur and (size + n > batch_bytes or len(cur) >= batch_files):
            batches.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += n
    if cur:
        batches.append(cur)
    return batches


def _error_entry(display: str, error: str) -> Dict[str, Any]:
    return {"path": display, "format": "unreadable", "is_safe": False, "risk_level": "SAFE",
            "complete": False, "stopped_by": "io_error", "findings": [], "globals": [],
            "error": error}


def scan_batch(batch: List[Dict[str, Any]], policy: str, cache: Optional[str] = None,
               bounds: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Scan one batch (a list of plan targets: ``{"display", "path"}`` or ``{"display",
    "url"}``) under a policy snapshot (``plan(...)["policy"]``), within ``bounds``
    (``plan(...)["bounds"]``: ``--max-size`` and ``--timeout``), through the verdict cache
    directory ``cache`` if given. Returns ``{"files": [report entries], "cache": counts or
    None}``. Runs in any process with pickleguard installed; a file that cannot be read is an
    error entry (not safe), never left out.

    Every file, local or remote, is judged by the command line's judge (same bounds, cache
    and names); a URL is first fetched as ``pickleguard scan URL`` fetches it
    (:mod:`pickleguard.remote`: only the bytes a scan reads, nothing over ``--max-size``)."""
    b = bounds or {}
    max_size, timeout = b.get("max_size"), b.get("timeout")
    local = [(t["display"], t["path"]) for t in batch if "path" in t]
    out: Dict[str, Any] = json.loads(_native.scan_batch(local, policy, cache, max_size, timeout))
    urls = [t for t in batch if "url" in t]
    if not urls:
        return out
    from . import remote
    with tempfile.TemporaryDirectory(prefix="pickleguard-remote-") as tmp:
        for i, t in enumerate(urls):
            try:
                got = remote.fetch(t["url"], os.path.join(tmp, str(i)), max_size)
            except Exception as e:  # any failure to fetch is an error entry, not a verdict
                out["files"].append(_error_entry(t["display"], f"{type(e).__name__}: {e}"))
                continue
            files = [(str(got.local / f) if got.local.is_dir() else str(got.local),) * 2
                     for f in got.files]
            # Remote copies are never cached: their identity is a temporary file's.
            r = json.loads(_native.scan_batch(files, policy, None, max_size, timeout,
                                              [got.remote_name()]))
            out["files"].extend(r["files"])
    return out


def merge(p: Dict[str, Any], results: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """One JSON report (docs/report-schema.md) from a plan and its batches' results: files
    in path order, the plan's walk failures as errors, cache counts summed."""
    files: List[Dict[str, Any]] = []
    counts: Optional[Dict[str, int]] = None
    for r in results:
        files.extend(r["files"])
        if r.get("cache") is not None:
            counts = counts or {"cache_hits": 0, "cache_confirmed": 0, "scanned": 0}
            for k in counts:
                counts[k] += int(r["cache"][k])
    for display, error in p["failures"]:
        files.append(_error_entry(display, error))
    doc = {"schema_version": 1, "tool": {}, "mode": p["mode"], "fail_on": p["fail_on"],
           "configs": p.get("configs", []), "links": p.get("links", []),
           "files": files, "summary": dict(counts or {})}
    # The command line's writer orders, de-duplicates and counts.
    merged: Dict[str, Any] = json.loads(_native.render_report(json.dumps(doc), "json"))
    return merged


def render(report: Dict[str, Any], format: str = "sarif") -> str:
    """A merged report as ``"sarif"``, ``"text"``, ``"json"`` or ``"jsonl"``, by the command
    line's own writers."""
    return _native.render_report(json.dumps(report), format)


def _run(client: Any, p: Dict[str, Any], *, batch_bytes: int, batch_files: int,
         progress: Union[bool, Progress, None], resubmits: int,
         task: Callable[..., Dict[str, Any]] = scan_batch) -> Dict[str, Any]:
    """Run a plan on ``client``; ``task`` stands for :func:`scan_batch` (same signature), e.g.
    to wrap it with instrumentation."""
    from dask.distributed import as_completed

    cache = p.get("cache")
    bounds = p.get("bounds")
    batches = make_batches(p["targets"], batch_bytes, batch_files)
    total_files = len(p["targets"])
    total_bytes = sum(int(t.get("size") or 0) for t in p["targets"])
    report_progress = _progress_printer() if progress is True else (progress or None)
    # One copy of the policy on each worker instead of one per task.
    policy = client.scatter(p["policy"], broadcast=True)
    futures = {}
    for i, b in enumerate(batches):
        f = client.submit(task, b, policy, cache, bounds, pure=False)
        futures[f] = (i, 0)
    results: List[Dict[str, Any]] = []
    done_files = done_bytes = 0
    pending = as_completed(list(futures))
    for f in pending:
        i, tries = futures.pop(f)
        batch = batches[i]
        try:
            r = f.result()
        except Exception as e:  # KilledWorker, a crash in the task: run it again or report
            if tries < resubmits:
                g = client.submit(task, batch, policy, cache, bounds, pure=False)
                futures[g] = (i, tries + 1)
                pending.add(g)
                continue
            why = f"the cluster did not complete this file's batch: {type(e).__name__}: {e}"
            r = {"files": [_error_entry(t["display"], why) for t in batch], "cache": None}
        results.append(r)
        done_files += len(batch)
        done_bytes += sum(int(t.get("size") or 0) for t in batch)
        if report_progress is not None:
            report_progress(done_files, total_files, done_bytes, total_bytes)
    return merge(p, results)


def _progress_printer() -> Progress:
    def show(done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\rpickleguard: {done}/{total} files, "
                         f"{done_bytes / 1e6:.1f}/{total_bytes / 1e6:.1f} MB{end}")
        sys.stderr.flush()
    return show


def scan(paths: Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]],
         client: Any = None, *, mode: Optional[str] = None, allow: Iterable[str] = (),
         policy: Iterable[Union[str, "os.PathLike[str]"]] = (), fail_on: Optional[str] = None,
         no_config: bool = False, include: Iterable[str] = (), exclude: Iterable[str] = (),
         follow_symlinks: bool = False, cache: Optional[Union[str, "os.PathLike[str]"]] = None,
         max_size: Optional[int] = None, timeout: Optional[float] = None,
         batch_bytes: int = BATCH_BYTES, batch_files: int = BATCH_FILES,
         progress: Union[bool, Progress, None] = None,
         resubmits: int = RESUBMITS) -> Dict[str, Any]:
    """Scan files, directories (recursively) and URLs on a dask cluster; returns the JSON
    report ``pickleguard scan --format json`` prints for the same arguments.

    ``client``: a ``dask.distributed.Client`` (default: the current one). Options are the
    command line's (``--mode``, ``--allow``, ``--policy``, ``--fail-on``, ``--no-config``,
    ``--include``, ``--exclude``, ``--follow-symlinks``, ``--cache``, ``--max-size`` in bytes,
    ``--timeout`` in seconds); the policy is resolved
    here, on the client, and sent to the workers. ``cache`` must be a directory every worker
    sees (a shared file system). ``progress``: ``True`` for a line on stderr, or a callable
    ``(files_done, files_total, bytes_done, bytes_total)``."""
    if client is None:
        from dask.distributed import get_client
        client = get_client()
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    names = [os.fspath(x) for x in items]
    urls = [n for n in names if _is_url(n)]
    local = [n for n in names if not _is_url(n)]
    with tempfile.TemporaryDirectory() as empty:
        # `scan` needs a path: with URLs only, an empty directory stands in.
        argv = _argv(local or [empty], mode=mode, allow=allow, policy=policy, fail_on=fail_on,
                     no_config=no_config, include=include, exclude=exclude,
                     follow_symlinks=follow_symlinks,
                     cache=os.fspath(cache) if cache is not None else None,
                     max_size=max_size, timeout=timeout)
        p = plan(argv, urls)
    return _run(client, p, batch_bytes=batch_bytes, batch_files=batch_files,
                progress=progress, resubmits=resubmits)


def main(argv: List[str]) -> int:
    """``pickleguard scan --dask ADDRESS ...`` (the Python console script hands it here)."""
    try:
        p = plan(argv)
    except ValueError as e:
        sys.stderr.write(f"{e}\n" if str(e).startswith(("error:", "pickleguard")) else
                         f"pickleguard: {e}\n")
        return 2
    try:
        from dask.distributed import Client
    except ImportError:
        sys.stderr.write("pickleguard: --dask needs dask.distributed (pip install "
                         "'dask[distributed]')\n")
        return 2
    try:
        client = Client(p["dask"], timeout=30)
    except (OSError, TimeoutError) as e:
        sys.stderr.write(f"pickleguard: --dask {p['dask']}: {e}\n")
        return 2
    show = p["format"] != "jsonl" and sys.stderr.isatty() and "-q" not in argv \
        and "--quiet" not in argv
    try:
        report = _run(client, p, batch_bytes=BATCH_BYTES, batch_files=BATCH_FILES,
                      progress=True if show else None, resubmits=RESUBMITS)
    finally:
        client.close()
    sys.stdout.flush()
    return _native.finish_scan(argv, json.dumps(report), p["skipped_links"], p["loops"],
                               p["duplicates"])
