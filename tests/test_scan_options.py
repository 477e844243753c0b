"""`pickleguard scan` options users of other scanners expect (issue 17): --list-globals,
--max-size, --timeout, and the JSON Schema of the report (docs/report.schema.json), which
conftest.run_scan applies to every JSON report the suite's CLI tests produce."""
from __future__ import annotations

import json
import pickle
import subprocess

import jsonschema
import pytest
from conftest import REPORT_SCHEMA, validate_jsonl, validate_report


def run(pg_bin, *args, timeout=300):
    return subprocess.run([str(pg_bin), "scan", "--no-config", "--color", "never",
                           *map(str, args)], capture_output=True, text=True, timeout=timeout)


def newobj(module: str, name: str) -> bytes:
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")\x81."


def test_list_globals_shows_each_files_globals_with_their_uses(tmp_path, pg_bin):
    import collections
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    (tmp_path / "b.pkl").write_bytes(newobj("myapp.models", "User"))
    (tmp_path / "c.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    proc = run(pg_bin, tmp_path, "--list-globals")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    blocks = {}
    for line in out.splitlines():
        if not line.startswith(" ") and ": " in line:
            current = blocks.setdefault(line.split(": ")[0].rsplit("/", 1)[-1], [])
        elif line.startswith("    ") and not line.startswith("    fix:"):
            current.append(line.strip())
    assert blocks["b.pkl"] == ["myapp.models.User (new; 1 use)"], out
    assert any(g.startswith("collections.OrderedDict (") for g in blocks["a.pkl"]), out
    assert "globals: none" in out.split("c.pkl")[1].splitlines()[1], out
    # Without the flag, no listing.
    assert "myapp.models.User (new" not in run(pg_bin, tmp_path).stdout


def test_max_size_reports_big_files_not_scanned_and_never_safe(tmp_path, pg_bin, scan):
    small, big = tmp_path / "small.pkl", tmp_path / "big.pkl"
    small.write_bytes(pickle.dumps(list(range(10))))
    big.write_bytes(pickle.dumps(list(range(100_000))))
    size = big.stat().st_size
    r = scan(big, extra=["--max-size", "64K"])
    assert not r["is_safe"] and not r["complete"] and r["stopped_by"] == "limit:max_size", r
    assert r["format"] == "not_scanned" and not r["globals"], r
    [f] = r["findings"]
    assert f["type"] == "RESOURCE_LIMIT" and str(size) in f["description"], f
    assert scan(small, extra=["--max-size", "64K"])["is_safe"]
    assert scan(big, extra=["--max-size", str(size)])["is_safe"]  # not larger: scanned
    proc = run(pg_bin, tmp_path, "--max-size", "1K")
    assert proc.returncode == 1
    assert "larger than --max-size were not scanned" in proc.stderr
    assert "big.pkl: UNSAFE" in proc.stdout and "small.pkl: SAFE" in proc.stdout
    # Even a policy that fails on nothing below CRITICAL does not call it safe.
    assert not scan(big, extra=["--max-size", "1K", "--fail-on", "CRITICAL"])["is_safe"]
    for bad in ("12Q", "-5", "lots"):
        assert run(pg_bin, small, "--max-size", bad).returncode == 2


def test_timeout_reports_a_slow_file_as_a_resource_limit(tmp_path, pg_bin, scan):
    slow = tmp_path / "slow.pkl"
    # Tens of thousands of distinct calls: far more than a microsecond of work.
    slow.write_bytes(pickle.dumps([complex(i, 1) for i in range(200_000)], protocol=4))
    r = scan(slow, extra=["--timeout", "0.000001"])
    assert not r["is_safe"] and r["stopped_by"] == "limit:timeout" and not r["complete"], r
    assert [f["type"] for f in r["findings"]] == ["RESOURCE_LIMIT"], r
    assert "--timeout" in r["findings"][0]["description"]
    r = scan(slow, extra=["--timeout", "300"])
    assert r["complete"] and r["stopped_by"] is None and r["globals"], r
    for bad in ("0", "-1", "soon"):
        assert run(pg_bin, slow, "--timeout", bad).returncode == 2


def test_the_schema_accepts_real_reports_and_rejects_inconsistent_ones(tmp_path, pg_bin):
    jsonschema.Draft202012Validator.check_schema(json.loads(REPORT_SCHEMA.read_text()))
    (tmp_path / "x.pkl").write_bytes(newobj("myapp.models", "User"))
    (tmp_path / "y.txt").write_text("not a pickle")
    proc = run(pg_bin, tmp_path, "--format", "json")
    doc = validate_report(json.loads(proc.stdout))
    bad = json.loads(proc.stdout)
    bad["files"][0]["stopped_by"] = "limit:ops"  # complete and a stop reason at once
    with pytest.raises(AssertionError, match="schema"):
        validate_report(bad)
    bad = json.loads(proc.stdout)
    bad["files"][0]["findings"][0]["type"] = "NO_SUCH_TYPE"
    with pytest.raises(AssertionError):
        validate_report(bad)
    assert doc["summary"]["files"] == 2


def _jsonl_files(text):
    doc = validate_jsonl(text)
    return {f["path"].rsplit("/", 1)[-1]: f for f in doc["files"]}


def test_bounds_hold_on_every_scan_path_and_never_reach_the_cache(tmp_path, pg_bin):
    """--max-size and --timeout give one verdict whatever runs the scan (plain, jsonl, cache,
    the batches of pickleguard.distributed), and no verdict a bound produced is ever reused
    by a later run with other bounds (docs/cli.md, "Verdict cache", "Bounds")."""
    import time
    from pickleguard import distributed
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "small.pkl").write_bytes(pickle.dumps(list(range(10))))
    big = tree / "big.pkl"
    big.write_bytes(pickle.dumps([complex(i, 1) for i in range(100_000)], protocol=4))
    time.sleep(1.2)  # out of the cache's racy window: verdicts are stored
    cache = tmp_path / "cache"

    def doc(*extra):
        proc = run(pg_bin, "--format", "json", *extra, tree)
        assert proc.returncode in (0, 1), proc.stderr
        return {f["path"].rsplit("/", 1)[-1]: f for f in validate_report(json.loads(proc.stdout))["files"]}

    def stop(f):
        return (f["is_safe"], f["complete"], f["stopped_by"])

    limited = (False, False, "limit:max_size")
    plain = doc("--max-size", "64K")
    assert stop(plain["big.pkl"]) == limited and plain["small.pkl"]["is_safe"]
    # The cache: the limited verdict is not stored; a later unbounded run judges the file.
    assert stop(doc("--max-size", "64K", "--cache", cache)["big.pkl"]) == limited
    full = doc("--cache", cache)["big.pkl"]
    assert stop(full) == (True, True, None)
    # Now a complete verdict is cached; the limit still applies before the cache is asked.
    assert stop(doc("--max-size", "64K", "--cache", cache)["big.pkl"]) == limited
    assert doc("--cache", cache)["big.pkl"] == full
    # JSON Lines, with and without the cache.
    for extra in ([], ["--cache", str(cache)]):
        proc = run(pg_bin, "--format", "jsonl", "--max-size", "64K", *extra, tree)
        assert stop(_jsonl_files(proc.stdout)["big.pkl"]) == limited, proc.stdout
    # A timeout is never stored as a verdict: a later run gets the file's complete verdict.
    tcache = tmp_path / "tcache"
    timed = doc("--timeout", "0.000001", "--cache", tcache)["big.pkl"]
    assert stop(timed) == (False, False, "limit:timeout")
    assert stop(doc("--cache", tcache)["big.pkl"]) == (True, True, None)
    # The batches of a cluster scan (plain Python, no cluster needed) carry the same bounds.
    for extra in ([], ["--cache", str(cache)]):
        p = distributed.plan(["pickleguard", "scan", "--no-config", "--max-size", "64K",
                              *extra, "--", str(tree)])
        assert p["bounds"] == {"max_size": 64 << 10, "timeout": None}
        out = distributed.scan_batch(p["targets"], p["policy"], p.get("cache"), p["bounds"])
        validate_report(distributed.merge(p, [out]))
        by = {f["path"].rsplit("/", 1)[-1]: f for f in out["files"]}
        assert stop(by["big.pkl"]) == limited and by["small.pkl"]["is_safe"], by
    p = distributed.plan(["pickleguard", "scan", "--no-config", "--timeout", "0.000001",
                          "--", str(tree)])
    out = distributed.scan_batch(p["targets"], p["policy"], None, p["bounds"])
    by = {f["path"].rsplit("/", 1)[-1]: f for f in out["files"]}
    assert stop(by["big.pkl"]) == (False, False, "limit:timeout"), by
