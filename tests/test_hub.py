"""Scanning a hub (issue 18): the verdict cache (`--cache`, `scan_file(cache=)`), JSON Lines
output, and scans on a real dask.distributed LocalCluster with worker processes.

Trees come from hub_tree.py: distinct raw pickles, torch zips, joblib dumps and .npy files, one
planted payload of each kind (posix.system creating a marker file, never loaded).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hub_tree
from conftest import validate_json_output, validate_report

# A file modified within the cache's racy window (1 s) is judged but not stored.
RACY = 1.2


def run(pg_bin, *args, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.run([str(pg_bin), *map(str, args)], capture_output=True, timeout=300,
                          env=e, cwd=cwd)
    validate_json_output(args, proc)  # every JSON report the suite produces meets the schema
    return proc


def scan_json(pg_bin, *args, env=None, cwd=None):
    p = run(pg_bin, "scan", "--no-config", "-f", "json", *args, env=env, cwd=cwd)
    assert p.returncode in (0, 1), p.stderr.decode()
    return json.loads(p.stdout)


def verdicts(doc):
    return {f["path"]: (f["is_safe"], f["risk_level"], f["error"]) for f in doc["files"]}


def without_cache_counts(doc):
    d = json.loads(json.dumps(doc))
    for k in ("cache_hits", "cache_confirmed", "scanned"):
        d["summary"].pop(k, None)
    return d


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    markers = tmp_path_factory.mktemp("markers")
    kinds = hub_tree.make_tree(root / "tree", raw=60, torch_sizes=[(3, 4096), (1, 3 << 20)],
                               joblib_n=4, npy_n=4, marker_dir=markers, per_dir=20)
    time.sleep(RACY)
    return root, kinds, markers


def fresh_copy(src: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(src, dst)
    time.sleep(RACY)
    return dst


# ---------------------------------------------------------------------------- cache, CLI
def test_cached_rescan_reads_nothing_and_agrees(pg_bin, small_tree, tmp_path):
    root, kinds, markers = small_tree
    tree = root / "tree"
    n = len(kinds["attacks"]) + len(kinds["benign"])
    plain = scan_json(pg_bin, "tree", cwd=root)
    assert plain["summary"]["files"] == n and "cache_hits" not in plain["summary"]
    for a in kinds["attacks"]:
        f = next(x for x in plain["files"] if x["path"] == f"tree/{a}")
        assert not f["is_safe"] and f["risk_level"] == "CRITICAL", f
    assert all(f["is_safe"] for f in plain["files"]
               if f["path"][5:] in set(kinds["benign"])), plain["summary"]
    cache = tmp_path / "cache"
    first = scan_json(pg_bin, "--cache", cache, "tree", cwd=root)
    assert first["summary"]["scanned"] == n and first["summary"]["cache_hits"] == 0
    second = scan_json(pg_bin, "--cache", cache, "tree", cwd=root)
    assert second["summary"]["cache_hits"] == n, second["summary"]
    assert second["summary"]["scanned"] == 0 and second["summary"]["cache_confirmed"] == 0
    assert without_cache_counts(first) == plain
    assert without_cache_counts(second) == plain
    assert not any(markers.iterdir())
    assert tree.exists()


def test_content_change_is_rejudged(pg_bin, small_tree, tmp_path):
    root, kinds, markers = small_tree
    tree = fresh_copy(root / "tree", tmp_path / "tree")
    cache = tmp_path / "cache"
    scan_json(pg_bin, "--cache", cache, tree)
    victim = tree / kinds["benign"][0]
    evil = tree / kinds["attacks"][0]
    victim.write_bytes(evil.read_bytes())
    time.sleep(RACY)
    doc = scan_json(pg_bin, "--cache", cache, tree)
    s = doc["summary"]
    n = s["files"]
    # The changed file is read again; its bytes are another file's, judged already.
    assert s["cache_hits"] == n - 1 and s["cache_confirmed"] + s["scanned"] == 1, s
    f = next(x for x in doc["files"] if x["path"] == str(victim))
    assert not f["is_safe"] and f["risk_level"] == "CRITICAL"
    # Same size, different bytes: never the old verdict.
    other = next(tree / b for b in kinds["benign"]
                 if b.endswith(".pkl") and (tree / b).stat().st_size >= 200)
    other.write_bytes(same_size_payload(other.stat().st_size, markers))
    time.sleep(RACY)
    doc = scan_json(pg_bin, "--cache", cache, tree)
    f = next(x for x in doc["files"] if x["path"] == str(other))
    assert not f["is_safe"] and f["risk_level"] == "CRITICAL", f
    assert doc["summary"]["scanned"] == 1, doc["summary"]


def same_size_payload(size: int, markers: Path) -> bytes:
    """`posix.system("touch MARKER   ...")` padded with spaces to exactly `size` bytes."""
    cmd = f"touch {markers}/pickleguard-marker-x"
    body = b"cposix\nsystem\n(V" + cmd.encode() + b"\ntR."
    assert len(body) <= size
    cmd += " " * (size - len(body))
    out = b"cposix\nsystem\n(V" + cmd.encode() + b"\ntR."
    assert len(out) == size
    return out


def test_touch_confirms_by_hash_and_sparse_models_rescan(pg_bin, small_tree, tmp_path):
    root, kinds, _ = small_tree
    tree = fresh_copy(root / "tree", tmp_path / "tree")
    cache = tmp_path / "cache"
    scan_json(pg_bin, "--cache", cache, tree)
    small = tree / kinds["benign"][2]
    big = next(tree / b for b in kinds["benign"] if (tree / b).stat().st_size >= 1 << 20)
    os.utime(small)
    os.utime(big)
    time.sleep(RACY)
    s = scan_json(pg_bin, "--cache", cache, tree)["summary"]
    # The small file is read and hashed (its identity changed, its bytes did not); the big
    # torch zip is not hashed (a scan reads only its pickles), so it is scanned again.
    assert s["cache_confirmed"] == 1 and s["scanned"] == 1, s
    assert s["cache_hits"] == s["files"] - 2


@pytest.mark.parametrize("change", [
    ["--fail-on", "HIGH"], ["--allow", "myapp.models:Thing"], ["--mode", "strict"],
    ["--mode", "audit"], "policy-file-limits", "engine",
])
def test_rule_or_engine_change_rejudges_everything(pg_bin, small_tree, tmp_path, change):
    root, _, _ = small_tree
    cache = tmp_path / "cache"
    base = scan_json(pg_bin, "--cache", cache, "tree", cwd=root)
    n = base["summary"]["files"]
    env = None
    if change == "engine":
        args, env = [], {"PICKLEGUARD_CACHE_ENGINE_SALT": "another-build"}
    elif change == "policy-file-limits":
        pol = tmp_path / "limits.toml"
        pol.write_text("[limits]\nmax_ops = 50000000\n")
        args = ["--policy", pol]
    else:
        args = change
    doc = scan_json(pg_bin, "--cache", cache, *args, "tree", env=env, cwd=root)
    assert doc["summary"]["scanned"] == n and doc["summary"]["cache_hits"] == 0, doc["summary"]
    again = scan_json(pg_bin, "--cache", cache, *args, "tree", env=env, cwd=root)
    assert again["summary"]["cache_hits"] == n
    assert without_cache_counts(again) == without_cache_counts(doc)
    # The first rules' verdicts are still there.
    assert scan_json(pg_bin, "--cache", cache, "tree", cwd=root)["summary"]["cache_hits"] == n


def segments(cache: Path) -> list:
    return sorted((cache / "v2").rglob("seg-*.pgc"))


def test_concurrent_writers_agree(pg_bin, small_tree, tmp_path):
    """CLI processes and Python processes write one cache at once, over rounds that leave more
    segments than the merge threshold, so merges run while others write."""
    root, kinds, _ = small_tree
    cache = tmp_path / "cache"
    plain = scan_json(pg_bin, "tree", cwd=root)
    files = sorted(kinds["attacks"] + kinds["benign"])
    py = ("import sys, pickleguard\n"
          "for p in sys.argv[2:]:\n"
          "    pickleguard.scan_file(p, cache=sys.argv[1])\n")
    for _ in range(3):
        procs = [subprocess.Popen([str(pg_bin), "scan", "--no-config", "-f", "json", "-j", "2",
                                   "--cache", str(cache), "tree"], cwd=root,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(4)]
        procs += [subprocess.Popen([sys.executable, "-c", py, str(cache),
                                    *[f"tree/{f}" for f in files[i::2]]], cwd=root,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                  for i in range(2)]
        for p in procs[:4]:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 1, err.decode()
            assert without_cache_counts(json.loads(out)) == plain
        for p in procs[4:]:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()
    assert segments(cache) and not list((cache / "v2").rglob(".tmp-*"))
    doc = scan_json(pg_bin, "--cache", cache, "tree", cwd=root)
    assert doc["summary"]["cache_hits"] == len(files), doc["summary"]
    assert without_cache_counts(doc) == plain
    # 18 writers ran; merges keep the segment count bounded.
    assert len(segments(cache)) <= 9 + 1, segments(cache)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage", "swap"])
def test_damaged_segments_are_ignored_then_repaired(pg_bin, small_tree, tmp_path, damage):
    root, _, _ = small_tree
    cache = tmp_path / "cache"
    plain = scan_json(pg_bin, "tree", cwd=root)
    n = plain["summary"]["files"]
    scan_json(pg_bin, "--cache", cache, "tree", cwd=root)
    (seg,) = segments(cache)
    data = seg.read_bytes()
    if damage == "truncate":
        seg.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        b = bytearray(data)
        b[len(b) // 2] ^= 1
        seg.write_bytes(bytes(b))
    elif damage == "empty":
        seg.write_bytes(b"")
    elif damage == "garbage":
        seg.write_bytes(data[:200] + os.urandom(len(data) - 200))
    else:
        # A valid segment of other rules, copied over this one: none of it is read.
        other = tmp_path / "other"
        scan_json(pg_bin, "--cache", other, "--fail-on", "HIGH", "tree", cwd=root)
        seg.write_bytes(segments(other)[0].read_bytes())
    doc = scan_json(pg_bin, "--cache", cache, "tree", cwd=root)
    s = doc["summary"]
    assert without_cache_counts(doc) == plain
    assert s["cache_hits"] + s["cache_confirmed"] + s["scanned"] == n
    if damage in ("empty", "swap", "garbage"):
        assert s["cache_hits"] == 0 and s["cache_confirmed"] == 0, s
    else:
        assert s["scanned"] > 0 and s["cache_hits"] < n, s
    # What was judged again was stored again: the next scan hits everything.
    again = scan_json(pg_bin, "--cache", cache, "tree", cwd=root)
    assert again["summary"]["cache_hits"] == n, again["summary"]
    assert without_cache_counts(again) == plain


def test_cache_size_is_bounded(pg_bin, small_tree, tmp_path):
    """Under a small bound, merges drop the oldest records: the cache stays near the bound
    whatever the number of scans, and what is left still verifies."""
    root, kinds, _ = small_tree
    cache = tmp_path / "cache"
    bound = 40_000
    env = {"PICKLEGUARD_CACHE_MAX_BYTES": str(bound)}
    plain = scan_json(pg_bin, "tree", cwd=root)
    for rules in range(12):
        doc = scan_json(pg_bin, "--cache", cache, "--allow", f"m{rules % 3}:X", "tree",
                        env=env, cwd=root)
        assert doc["summary"]["files"] == plain["summary"]["files"]
    for d in (cache / "v2").iterdir():
        size = sum(p.stat().st_size for p in d.glob("seg-*.pgc"))
        # The last scan's own segment comes on top of the merged, bounded one.
        assert size <= 2 * bound + 200_000, (d, size)
    doc = scan_json(pg_bin, "--cache", cache, "--allow", "m0:X", "tree", env=env, cwd=root)
    assert [f["is_safe"] for f in doc["files"]] == [f["is_safe"] for f in plain["files"]]


def test_rewrite_with_restored_mtime_is_rejudged_and_cache_verify_hashes(pg_bin, small_tree,
                                                                       tmp_path):
    """Same size, new bytes, mtime put back: the ctime still moved, so the identity differs and
    the file is judged again. --cache-verify never trusts an identity at all."""
    root, kinds, markers = small_tree
    tree = fresh_copy(root / "tree", tmp_path / "tree")
    cache = tmp_path / "cache"
    scan_json(pg_bin, "--cache", cache, tree)
    victim = next(tree / b for b in kinds["benign"]
                  if b.endswith(".pkl") and (tree / b).stat().st_size >= 200)
    st = victim.stat()
    victim.write_bytes(same_size_payload(st.st_size, markers))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_mtime_ns == st.st_mtime_ns and victim.stat().st_size == st.st_size
    time.sleep(RACY)
    doc = scan_json(pg_bin, "--cache", cache, tree)
    f = next(x for x in doc["files"] if x["path"] == str(victim))
    assert not f["is_safe"] and f["risk_level"] == "CRITICAL", f
    assert doc["summary"]["scanned"] == 1, doc["summary"]
    verify = scan_json(pg_bin, "--cache", cache, "--cache-verify", tree)
    s = verify["summary"]
    assert s["cache_hits"] == 0 and s["cache_confirmed"] + s["scanned"] == s["files"], s
    # Only the large sparse torch zip is not hashed, so it is the one scanned again.
    big = [b for b in kinds["benign"] if (tree / b).stat().st_size >= 1 << 20]
    assert s["scanned"] == len(big), s
    assert without_cache_counts(verify) == without_cache_counts(scan_json(pg_bin, tree))


def test_a_file_replaced_with_same_size_and_mtime_is_rejudged(pg_bin, small_tree, tmp_path):
    """The identity a cached re-scan trusts is the one the walk saw, and for a link its
    target's: a file swapped for another of the same size and mtime (a new inode, by rename),
    a link's target swapped the same way, and a link re-pointed at such a file are judged
    again, never served the old verdict."""
    root, kinds, markers = small_tree
    tree = fresh_copy(root / "tree", tmp_path / "tree")
    outside = tmp_path / "outside"
    outside.mkdir()
    benign = [tree / b for b in kinds["benign"]
              if b.endswith(".pkl") and (tree / b).stat().st_size >= 200][:3]
    # Two links in the tree to benign files outside it.
    for i, b in enumerate(benign[1:]):
        (outside / f"t{i}.pkl").write_bytes(b.read_bytes())
        os.utime(outside / f"t{i}.pkl", ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns))
        (tree / f"link{i}.pkl").symlink_to(outside / f"t{i}.pkl")
    time.sleep(RACY)
    cache = tmp_path / "cache"
    first = scan_json(pg_bin, "--cache", cache, tree)
    s = first["summary"]
    # The links' targets are copies of files in the tree: the same bytes, confirmed by hash.
    assert (s["scanned"], s["cache_confirmed"]) == (s["files"] - 2, 2), s
    assert scan_json(pg_bin, "--cache", cache, tree)["summary"]["scanned"] == 0

    def swap(path: Path) -> None:
        st = path.stat()
        new = path.with_name(path.name + ".new")
        new.write_bytes(same_size_payload(st.st_size, markers))
        os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.rename(new, path)
        assert path.stat().st_ino != st.st_ino
        assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)

    swap(benign[0])
    swap(outside / "t0.pkl")
    st = (outside / "t1.pkl").stat()
    (outside / "t2.pkl").write_bytes(same_size_payload(st.st_size, markers))
    os.utime(outside / "t2.pkl", ns=(st.st_atime_ns, st.st_mtime_ns))
    (tree / "link1.pkl").unlink()
    (tree / "link1.pkl").symlink_to(outside / "t2.pkl")
    time.sleep(RACY)
    doc = scan_json(pg_bin, "--cache", cache, tree)
    changed = [str(benign[0]), str(tree / "link0.pkl"), str(tree / "link1.pkl")]
    for path in changed:
        f = next(x for x in doc["files"] if x["path"] == path)
        assert not f["is_safe"] and f["risk_level"] == "CRITICAL", f
    s = doc["summary"]
    assert s["cache_hits"] == s["files"] - 3 and s["scanned"] >= 1, s
    assert without_cache_counts(doc) == scan_json(pg_bin, tree)
    assert not any(markers.iterdir())


@pytest.mark.parametrize("fmt", ["json", "jsonl", "sarif"])
def test_cached_output_is_byte_identical(pg_bin, small_tree, tmp_path, fmt):
    """The whole report a cached re-scan writes is the uncached scan's, byte for byte, but for
    the cache's counts in the summary (JSON Lines: in file order, which follows the threads)."""
    root, _, _ = small_tree
    cache = tmp_path / "cache"

    def out(*extra):
        p = run(pg_bin, "scan", "--no-config", "-f", fmt, "--jobs", "1", *extra, "tree",
                cwd=root)
        assert p.returncode in (0, 1), p.stderr.decode()
        return p.stdout

    plain = out()
    filled = out("--cache", cache)
    cached = out("--cache", cache)
    if fmt == "sarif":
        assert filled == plain and cached == plain
        return

    def split(text: bytes) -> tuple[bytes, dict, dict]:
        """(everything before the summary, the summary without the cache's counts)."""
        if fmt == "jsonl":
            *files, last = text.splitlines(keepends=True)
            head, summary = b"".join(sorted(files)), json.loads(last)
        else:
            at = text.index(b'  "summary": {')
            head, summary = text[:at], json.loads(text)
        counts = {k: summary["summary"].pop(k, None)
                  for k in ("cache_hits", "cache_confirmed", "scanned")}
        return head, summary, counts

    p_head, p_sum, _ = split(plain)
    for text in (filled, cached):
        head, summary, _ = split(text)
        assert head == p_head
        assert summary == p_sum
    counts = split(cached)[2]
    assert counts["cache_hits"] == p_sum["summary"]["files"] and counts["scanned"] == 0, counts


_SERVE_CHECK = """
import json, sys
from pathlib import Path
import pickleguard
from pickleguard import _native
tree, cache, attacks, benign, phase = Path(sys.argv[1]), sys.argv[2], *json.loads(sys.argv[3])
bad = []
if phase == "allow":
    guard = pickleguard.PickleGuard(mode="ml", allowed_modules=["thirdlib.*", "otherlib.*",
                                                                "myapp.models:Thing"])
    for rel in attacks + benign:
        got, how = _native.scan_file_cached(str(tree / rel), guard.policy, cache)
        ref = guard.scan_file(tree / rel)
        if how != "hit" or (got["is_safe"], got["risk_level"]) != (ref.is_safe, ref.risk_level):
            bad.append((rel, how))
else:
    for rel in attacks:
        _, how = _native.scan_file_cached(str(tree / rel),
                                          pickleguard.PickleGuard(mode="ml").policy, cache)
        if how != "hit" or pickleguard.scan_file(tree / rel, cache=cache).is_safe:
            bad.append((rel, how))
print(json.dumps(bad))
"""


def test_cli_entries_serve_python_scan_file(pg_bin, small_tree, tmp_path):
    """The command line and scan_file(cache=) compute one rules id for one effective policy
    (entries given in any order), so a CLI scan's entries are Python's hits. The Python side
    runs in a fresh process: classes other tests registered would change its policy."""
    root, kinds, _ = small_tree
    tree = root / "tree"
    cache = tmp_path / "cache"

    def python_side(phase):
        args = json.dumps([kinds["attacks"], kinds["benign"], phase])
        out = subprocess.run([sys.executable, "-c", _SERVE_CHECK, str(tree), str(cache), args],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    scan_json(pg_bin, "--cache", cache, "--allow", "myapp.models:Thing", "--allow",
              "otherlib.*:*", "--allow", "thirdlib.*:*", tree)
    assert python_side("allow") == []
    # And the public function, default ml policy, after a default CLI scan.
    scan_json(pg_bin, "--cache", cache, tree)
    assert python_side("default") == []


def test_jsonl_streams_one_line_per_file_then_a_summary(pg_bin, small_tree, tmp_path):
    root, kinds, _ = small_tree
    p = run(pg_bin, "scan", "--no-config", "-f", "jsonl", "tree", "missing.pkl", cwd=root)
    assert p.returncode == 2, p.stderr.decode()  # the missing path is an error
    lines = [json.loads(l) for l in p.stdout.decode().splitlines()]
    files, summary = lines[:-1], lines[-1]
    assert all(l["type"] == "file" for l in files) and summary["type"] == "summary"
    plain = json.loads(run(pg_bin, "scan", "--no-config", "-f", "json", "tree", "missing.pkl",
                           cwd=root).stdout)
    by_path = {l["path"]: {k: v for k, v in l.items() if k != "type"} for l in files}
    assert len(by_path) == len(files)
    assert by_path == {f["path"]: f for f in plain["files"]}
    assert summary["summary"] == plain["summary"]
    assert summary["mode"] == "ml" and summary["schema_version"] == 1


# ---------------------------------------------------------------------------- cache, Python
def test_python_scan_file_shares_the_cache(pg_bin, small_tree, tmp_path):
    import pickleguard
    from pickleguard import _native
    root, kinds, _ = small_tree
    cache = tmp_path / "cache"
    tree = root / "tree"
    for rel in kinds["attacks"] + kinds["benign"][:5]:
        p = tree / rel
        ref = pickleguard.scan_file(p)
        got = pickleguard.scan_file(p, cache=cache)
        assert (got.is_safe, got.risk_level, got.format) == (ref.is_safe, ref.risk_level,
                                                             ref.format)
        policy = pickleguard.PickleGuard(mode="ml").policy
        _, how = _native.scan_file_cached(str(p), policy, str(cache))
        assert how == "hit", rel
    # Another policy (here --fail-on HIGH through the guard) has keys of its own.
    strict = pickleguard.PickleGuard(mode="ml", fail_on="HIGH").policy
    _, how = _native.scan_file_cached(str(tree / kinds["attacks"][0]), strict, str(cache))
    assert how == "scanned"
    with pytest.raises(OSError):
        pickleguard.scan_file(tmp_path / "absent.pkl", cache=cache)


def test_side_files_are_judged_on_every_cached_scan(pg_bin, tmp_path):
    """A legacy joblib pickle's verdict depends on the side file it names: the cache keeps the
    pickle's own report and follows the side file on every use, so replacing only the side
    file (the pickle's identity unchanged: a cache hit) changes the verdict."""
    import io
    import pickle
    import numpy
    import pickleguard
    d = tmp_path / "model"
    d.mkdir()
    side = d / "model.pkl_01.npy"
    buf = io.BytesIO()
    # 600 KB: read whole (not mapped), so reading it shows in /proc/self/io below.
    numpy.save(buf, numpy.arange(75_000.0))
    side.write_bytes(buf.getvalue())
    state = {"filename": side.name, "subclass": numpy.ndarray, "allow_mmap": True}
    model = d / "model.pkl"
    model.write_bytes(b"\x80\x02cjoblib.numpy_pickle\nNDArrayWrapper\n)\x81"
                      + pickle.dumps(state, protocol=2)[2:-1] + b"b.")
    time.sleep(RACY)
    cache = tmp_path / "cache"
    plain = scan_json(pg_bin, model)
    assert plain["files"][0]["is_safe"] is True, plain
    for _ in range(2):
        doc = scan_json(pg_bin, "--cache", cache, model)
        assert without_cache_counts(doc) == without_cache_counts(plain)
    assert doc["summary"]["cache_hits"] == 1, doc["summary"]
    assert pickleguard.scan_file(model, cache=cache).is_safe
    # The side file is cached with the pickle's entry, by its own identity: an unchanged one
    # is not read again.
    def read_bytes():
        with open("/proc/self/io") as f:
            return int(next(l for l in f if l.startswith("rchar")).split()[1])
    before = read_bytes()
    assert pickleguard.scan_file(model, cache=cache).is_safe
    assert read_bytes() - before < side.stat().st_size // 4
    before = read_bytes()
    assert pickleguard.scan_file(model).is_safe
    assert read_bytes() - before >= side.stat().st_size
    marker = tmp_path / "pickleguard-marker-side"
    side.write_bytes(b"cposix\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR.")
    doc = scan_json(pg_bin, "--cache", cache, model)
    assert doc["summary"]["cache_hits"] == 1, doc["summary"]
    assert doc["files"][0]["is_safe"] is False, doc["files"][0]
    assert any((f["member"] or "").startswith("side file") for f in doc["files"][0]["findings"])
    assert without_cache_counts(doc) == without_cache_counts(scan_json(pg_bin, model))
    assert not pickleguard.scan_file(model, cache=cache).is_safe
    assert not marker.exists()


# ---------------------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    import dask
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.worker.daemon": False}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None,
                                      memory_limit="2GiB") as lc:
            with distributed.Client(lc) as client:
                yield lc, client


def kill_once_task(batch, policy, cache=None, bounds=None, *, victim="", flag=""):
    """The task, except that the first attempt at the batch holding `victim` kills its own
    worker process mid-batch (the decision is a flag file shared by all workers)."""
    from pickleguard.distributed import scan_batch
    if any(t["display"].endswith(victim) for t in batch) and not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(1)
    return scan_batch(batch, policy, cache, bounds)


def always_kill_task(batch, policy, cache=None, bounds=None, *, victim=""):
    from pickleguard.distributed import scan_batch
    if any(t["display"].endswith(victim) for t in batch):
        os._exit(1)
    return scan_batch(batch, policy, cache, bounds)


def test_dask_report_equals_the_cli_report(pg_bin, small_tree, cluster):
    from pickleguard import distributed
    root, kinds, markers = small_tree
    _, client = cluster
    seen = []
    old = os.getcwd()
    os.chdir(root)
    try:
        doc = distributed.scan("tree", client, no_config=True, batch_files=7,
                               batch_bytes=1 << 16, progress=lambda *a: seen.append(a))
        # SARIF's %SRCROOT% is the working directory, as for the command line.
        sarif = json.loads(distributed.render(doc, "sarif"))
    finally:
        os.chdir(old)
    plain = scan_json(pg_bin, "tree", cwd=root)
    assert doc == plain
    n = len(kinds["attacks"]) + len(kinds["benign"])
    assert seen[-1][0] == seen[-1][1] == n and len(seen) > 5
    cli_sarif = json.loads(run(pg_bin, "scan", "--no-config", "-f", "sarif", "tree",
                               cwd=root).stdout)
    assert sarif == cli_sarif
    assert not any(markers.iterdir())


def test_a_worker_killed_mid_batch_changes_nothing(pg_bin, small_tree, cluster, tmp_path):
    import cloudpickle
    import functools
    from pickleguard import distributed
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    root, kinds, _ = small_tree
    _, client = cluster
    flag = tmp_path / "killed-once"
    victim = kinds["attacks"][1]  # the torch zip with a payload
    task = functools.partial(kill_once_task, victim=victim, flag=str(flag))
    p = distributed.plan(["pickleguard", "scan", "--no-config", "--", str(root / "tree")])
    doc = distributed._run(client, p, batch_bytes=1 << 16, batch_files=9, progress=None,
                           resubmits=2, task=task)
    assert flag.exists(), "the worker was not killed"
    plain = scan_json(pg_bin, root / "tree")
    assert doc == plain


def test_a_batch_that_never_completes_is_never_safe(small_tree, cluster):
    import cloudpickle
    import functools
    from pickleguard import distributed
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    root, kinds, _ = small_tree
    _, client = cluster
    victim = kinds["benign"][3]
    p = distributed.plan(["pickleguard", "scan", "--no-config", "--", str(root / "tree")])
    doc = distributed._run(client, p, batch_bytes=1 << 16, batch_files=4, progress=None,
                           resubmits=0, task=functools.partial(always_kill_task, victim=victim))
    f = next(x for x in doc["files"] if x["path"].endswith(victim))
    assert not f["is_safe"] and f["error"] and "did not complete" in f["error"], f
    assert doc["summary"]["errors"] >= 1
    # The killed workers come back (nannies restart them) before the next test.
    client.wait_for_workers(2, timeout=300)
    others = [x for x in doc["files"] if x["error"] is None]
    assert len(others) + doc["summary"]["errors"] == doc["summary"]["files"]


def test_dask_cache_and_cli_flag(pg_bin, small_tree, cluster, tmp_path):
    from pickleguard import distributed
    root, _, _ = small_tree
    lc, client = cluster
    cache = tmp_path / "cache"
    tree = root / "tree"
    first = validate_report(distributed.scan(tree, client, no_config=True, cache=cache,
                                             batch_files=10))
    assert first["summary"]["scanned"] == first["summary"]["files"]
    cli = scan_json(pg_bin, "--cache", cache, tree)
    assert cli["summary"]["cache_hits"] == cli["summary"]["files"], cli["summary"]
    again = distributed.scan(tree, client, no_config=True, cache=cache, batch_files=10)
    assert again == cli
    # `pickleguard scan --dask` through the Python console script; the Rust binary refuses.
    addr = lc.scheduler_address
    proc = subprocess.run([sys.executable, "-m", "pickleguard", "scan", "--no-config", "-f",
                           "json", "--dask", addr, str(tree)], capture_output=True, timeout=300)
    assert proc.returncode == 1, proc.stderr.decode()
    assert json.loads(proc.stdout) == scan_json(pg_bin, tree)
    rust = run(pg_bin, "scan", "--dask", addr, tree)
    assert rust.returncode == 2 and b"needs the Python package" in rust.stderr
    # The native command (the wheel's `pickleguard`) hands --dask to the Python beside it or
    # in PICKLEGUARD_PYTHON.
    handed = run(pg_bin, "scan", "--no-config", "-f", "json", "--dask", addr, tree,
                 env={"PICKLEGUARD_PYTHON": sys.executable})
    assert handed.returncode == 1, handed.stderr.decode()
    assert json.loads(handed.stdout) == scan_json(pg_bin, tree)


def test_dask_workers_and_cli_processes_write_one_cache_at_once(pg_bin, small_tree, cluster,
                                                                tmp_path):
    from pickleguard import distributed
    root, _, _ = small_tree
    _, client = cluster
    cache = tmp_path / "cache"
    tree = root / "tree"
    plain = scan_json(pg_bin, tree)
    procs = [subprocess.Popen([str(pg_bin), "scan", "--no-config", "-f", "json", "-j", "1",
                               "--cache", str(cache), str(tree)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    doc = distributed.scan(tree, client, no_config=True, cache=cache, batch_files=5)
    assert without_cache_counts(doc) == plain
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 1, err.decode()
        assert without_cache_counts(json.loads(out)) == plain
    after = scan_json(pg_bin, "--cache", cache, tree)
    assert after["summary"]["cache_hits"] == after["summary"]["files"], after["summary"]
    assert without_cache_counts(after) == plain


def test_urls_are_scanned_by_workers(small_tree, cluster):
    import http.server
    import threading
    from pickleguard import distributed
    root, kinds, _ = small_tree
    _, client = cluster
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(root / "tree"), **k)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        urls = [f"{base}/{kinds['attacks'][0]}", f"{base}/{kinds['benign'][0]}",
                f"{base}/no-such-file.pkl"]
        doc = distributed.scan(urls, client, no_config=True)
    finally:
        srv.shutdown()
    validate_report(doc)
    by = {f["path"]: f for f in doc["files"]}
    assert not by[urls[0]]["is_safe"] and by[urls[0]]["risk_level"] == "CRITICAL"
    assert by[urls[1]]["is_safe"] and by[urls[1]]["error"] is None
    # fsspec's HTTP reader raises FileNotFoundError for a 404.
    assert not by[urls[2]]["is_safe"] and "FileNotFoundError" in by[urls[2]]["error"]
