"""The `pickleguard` command line end to end, on generated trees (docs/cli.md).

Attack files are hand-written bytes whose payload would only create a marker file; nothing
here ever loads a pickle.
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import validate_json_output

ROOT = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = ROOT / "crates" / "pickleguard-cli" / "tests" / "sarif-schema-2.1.0.json"


def attack_global(marker: Path) -> bytes:
    """Protocol 0: posix.system('touch MARKER')."""
    return b"cposix\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR."


def attack_stack_global(marker: Path) -> bytes:
    """Protocol 4: os.system('touch MARKER') through STACK_GLOBAL."""
    cmd = f"touch {marker}".encode()
    return (
        b"\x80\x04\x8c\x02os\x8c\x06system\x93"
        + b"\x8c" + bytes([len(cmd)]) + cmd
        + b"\x85R."
    )


def attack_exec(marker: Path) -> bytes:
    """Protocol 2: builtins.exec("open('MARKER', 'w').close()")."""
    code = f"open({str(marker)!r}, 'w').close()".encode()
    return b"\x80\x02cbuiltins\nexec\nX" + len(code).to_bytes(4, "little") + code + b"\x85R."


def run(pg_bin, *args, cwd=None, stdin=None, timeout=300):
    proc = subprocess.run(
        [str(pg_bin), *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "NO_COLOR"},
    )
    validate_json_output(args, proc)
    return proc


def make_tree(root: Path, n: int, marker: Path) -> list[str]:
    """n benign pickles in n/100 folders plus three attack files; returns the attack paths
    as a scan of `root` reports them."""
    for i in range(n):
        sub = root / f"part{i % 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        obj = (
            {"id": i, "values": [i * 0.5, i + 1]}
            if i % 2
            else collections.OrderedDict(a=i, b=[1, 2])
        )
        (sub / f"f{i:05d}.pkl").write_bytes(pickle.dumps(obj, protocol=2 + i % 4))
    (root / "config.json").write_text('{"a": 1}')
    attacks = {
        root / "part007" / "evil.pkl": attack_global(marker),
        root / "part042" / "weights.bin": attack_stack_global(marker),
        root / "nested" / "deeper" / "model.npy": attack_exec(marker),
    }
    for p, data in attacks.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return sorted(str(p) for p in attacks)


def test_ten_thousand_files(pg_bin, tmp_path):
    marker = tmp_path / "PWNED"
    tree = tmp_path / "tree"
    attacks = make_tree(tree, 10_000, marker)
    proc = run(pg_bin, "scan", tree, "--format", "json", "--no-config")
    assert proc.returncode == 1, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 1
    assert doc["summary"] == {"files": 10_004, "unsafe": 3, "errors": 0}
    paths = [f["path"] for f in doc["files"]]
    assert paths == sorted(paths)
    assert [f["path"] for f in doc["files"] if not f["is_safe"]] == attacks
    assert not marker.exists()


def test_sarif_validates_against_the_2_1_0_schema(pg_bin, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    marker = tmp_path / "PWNED"
    attacks = make_tree(tmp_path / "tree", 20, marker)
    proc = run(pg_bin, "scan", "tree", "missing.pkl", "--format", "sarif", "--no-config", cwd=tmp_path)
    assert proc.returncode == 2  # missing.pkl: an I/O error, reported as a notification
    doc = json.loads(proc.stdout)
    schema = json.loads(SARIF_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{e.message} at {list(e.absolute_path)}" for e in errors[:10])
    run_ = doc["runs"][0]
    uris = sorted({r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run_["results"]})
    assert uris == sorted(str(Path(a).relative_to(tmp_path)) for a in attacks)
    assert run_["invocations"][0]["executionSuccessful"] is False
    levels = {r["properties"]["severity"]: r["level"] for r in run_["results"]}
    assert levels.get("CRITICAL") == "error"


def test_stdin(pg_bin, tmp_path):
    proc = run(pg_bin, "scan", "-", "--format", "json", "--no-config", stdin=attack_global(tmp_path / "x"))
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["files"][0]["path"] == "<stdin>"
    assert doc["files"][0]["risk_level"] == "CRITICAL"
    proc = run(pg_bin, "scan", "-", "--no-config", stdin=pickle.dumps({"a": [1, 2, 3]}))
    assert proc.returncode == 0
    assert b"<stdin>: SAFE" in proc.stdout


def test_output_file(pg_bin, tmp_path):
    make_tree(tmp_path / "tree", 10, tmp_path / "PWNED")
    out = tmp_path / "report.sarif"
    proc = run(pg_bin, "scan", tmp_path / "tree", "--format", "sarif", "--output", out, "--no-config")
    assert proc.returncode == 1
    assert proc.stdout == b""
    doc = json.loads(out.read_text())
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"][0]["results"]) >= 3


def test_real_pickles_of_common_objects_are_safe(pg_bin, tmp_path):
    np = pytest.importorskip("numpy")
    objs = {
        "dict.pkl": {"a": 1, "b": [1.5, None, True], "c": {"x": b"bytes"}},
        "ordered.pkl": collections.OrderedDict(x=1),
        "array.pkl": np.arange(12, dtype="float32").reshape(3, 4),
        "p5.pkl": {"w": np.ones(1000)},
    }
    for name, obj in objs.items():
        (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=5 if name == "p5.pkl" else 4))
    proc = run(pg_bin, "scan", tmp_path, "--format", "json", "--no-config")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, [f for f in doc["files"] if not f["is_safe"]]


def test_huge_file_memory_stays_bounded(pg_bin, tmp_path):
    """A 4 GiB file (sparse: a small payload, then a large BINBYTES8 blob) is memory-mapped,
    not read: the scanner's peak RSS stays far below the file size."""
    size = 4 << 30
    big = tmp_path / "huge.pkl"
    payload = 1 << 31
    with open(big, "wb") as f:
        f.write(b"\x80\x04\x8e" + payload.to_bytes(8, "little"))
        f.seek(11 + payload)
        f.write(b".")
        f.truncate(size)  # bytes after the STOP: trailing data
    evil = tmp_path / "huge-evil.pkl"
    with open(evil, "wb") as f:
        f.write(attack_global(tmp_path / "PWNED"))
        f.truncate(size)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = run(pg_bin, "scan", big, evil, "--format", "json", "--no-config")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert proc.returncode == 1, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    verdict = {Path(f["path"]).name: f["is_safe"] for f in doc["files"]}
    assert verdict == {"huge.pkl": True, "huge-evil.pkl": False}
    if peak_kib > before:  # RUSAGE_CHILDREN is a max over all children so far
        assert peak_kib < 1024 * 1024, f"peak RSS {peak_kib} KiB for two 4 GiB files"


def test_mapped_checkpoints_read_page_by_page_keep_their_verdicts(pg_bin, tmp_path):
    """Files of 1 MiB and more are mapped; a zip's map is read page by page (no read-ahead),
    a raw pickle's with read-ahead. Both give the verdicts of a small file."""
    torch = pytest.importorskip("torch")
    marker = tmp_path / "PWNED"
    weights = torch.zeros(512, 1024)  # 2 MiB of storage behind data.pkl
    torch.save({"w": weights}, tmp_path / "ok.pt")
    torch.save({"w": weights, "run": _SystemCall(f"touch {marker}")}, tmp_path / "evil.pt")
    (tmp_path / "evil.pkl").write_bytes(
        pickle.dumps({"pad": b"x" * (2 << 20), "run": _SystemCall(f"touch {marker}")}))
    for name in ("ok.pt", "evil.pt", "evil.pkl"):
        assert (tmp_path / name).stat().st_size >= 1 << 20
    proc = run(pg_bin, "scan", tmp_path, "--format", "json", "--no-config")
    assert proc.returncode == 1, proc.stderr.decode()
    files = {Path(f["path"]).name: f for f in json.loads(proc.stdout)["files"]}
    assert files["ok.pt"]["is_safe"] and files["ok.pt"]["format"] == "pytorch_zip"
    evil = files["evil.pt"]
    assert not evil["is_safe"] and evil["format"] == "pytorch_zip"
    assert any(f["type"] == "REDUCE_CALL" and f["member"].endswith("data.pkl")
               for f in evil["findings"]), evil
    assert not files["evil.pkl"]["is_safe"]
    assert not marker.exists()


def test_config_from_pyproject_in_a_parent(pg_bin, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.pickleguard]\nmode = "allowlist"\n\n'
        '[[tool.pickleguard.allow]]\nmodule = "collections"\ncall = ["OrderedDict"]\n'
    )
    work = tmp_path / "src" / "pkg"
    work.mkdir(parents=True)
    (work / "od.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    (work / "other.pkl").write_bytes(b"\x80\x02cmyapp\nThing\n)R.")
    proc = run(pg_bin, "scan", ".", "--format", "json", cwd=work)
    doc = json.loads(proc.stdout)
    assert doc["mode"] == "allowlist"
    assert {f["path"]: f["is_safe"] for f in doc["files"]} == {"./od.pkl": True, "./other.pkl": False}
    assert proc.returncode == 1


def test_learn_then_scan_round_trip(pg_bin, tmp_path):
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "od.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    (trusted / "app.pkl").write_bytes(b"\x80\x02cmyapp.models\nUser\n)\x81}X\x01\x00\x00\x00aK\x01sb.")
    assert run(pg_bin, "scan", trusted, "--mode", "allowlist", "--no-config").returncode == 1
    learned = tmp_path / "learned.toml"
    proc = run(pg_bin, "policy", "learn", trusted, "-o", learned, "--no-config")
    assert proc.returncode == 0, proc.stderr.decode()
    assert run(pg_bin, "scan", trusted, "--mode", "allowlist", "--policy", learned, "--no-config").returncode == 0
    # One attack file in the trusted set: nothing is learned.
    (trusted / "evil.pkl").write_bytes(attack_global(tmp_path / "PWNED"))
    learned.unlink()
    proc = run(pg_bin, "policy", "learn", trusted, "-o", learned, "--no-config")
    assert proc.returncode == 1 and not learned.exists()
    assert b"CRITICAL" in proc.stderr


def test_explain(pg_bin, tmp_path):
    f = tmp_path / "evil.pkl"
    f.write_bytes(attack_stack_global(tmp_path / "PWNED"))
    proc = run(pg_bin, "explain", f, "--no-config")
    assert proc.returncode == 1
    text = proc.stdout.decode()
    assert "from os import system" in text
    assert f"_v0 = system('touch {tmp_path / 'PWNED'}')" in text
    assert "<- CRITICAL REDUCE_CALL" in text


def test_explain_containers_disassembles_each_member(pg_bin, tmp_path):
    """A real torch checkpoint with a harmless attack pickle added as a gzip member: explain
    shows each pickle's opcodes under the member path of its findings."""
    torch = pytest.importorskip("torch")
    import gzip
    import zipfile
    f = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(3)}, f)
    with zipfile.ZipFile(f) as z:
        root = z.namelist()[0].split("/")[0]
    with zipfile.ZipFile(f, "a") as z:
        z.writestr(f"{root}/extra.pkl", gzip.compress(attack_stack_global(tmp_path / "PWNED")))
    proc = run(pg_bin, "explain", f, "--no-config")
    assert proc.returncode == 1, proc.stderr.decode()
    text = proc.stdout.decode()
    benign, _, evil = text.partition(f"== {root}/extra.pkl/decompressed gzip")
    assert f"== {root}/data.pkl" in benign, text
    assert "_rebuild_tensor_v2" in benign and "<- " not in benign.split("Findings:")[0], text
    body = evil.split("Findings:")[0]
    assert "STACK_GLOBAL" in body and "<- CRITICAL REDUCE_CALL" in body, text
    assert "from os import system" in body, text
    assert f"in {root}/extra.pkl/decompressed gzip: calls os.system" in text, text
    assert not (tmp_path / "PWNED").exists()


def test_explain_follows_joblib_arrays(pg_bin, tmp_path):
    """joblib writes array bytes into the pickle stream: explain skips exactly what joblib
    reads as numbers, shows an object array's own pickle, and goes on to the end."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    f = tmp_path / "arrays.joblib"
    joblib.dump({"ints": np.arange(1000), "grid": np.zeros((10, 10)),
                 "objects": np.array([1, "x"], dtype=object), "tail": "the end"}, f)
    proc = run(pg_bin, "explain", f, "--no-config")
    assert proc.returncode == 0, proc.stdout.decode()
    text = proc.stdout.decode()
    import re
    sizes = [int(n) for n in re.findall(r"joblib array data \((\d+) bytes\)", text)]
    # 1000 int64 and 100 float64, each after joblib's alignment padding (at most 16 bytes).
    assert len(sizes) == 2 and 8000 <= sizes[0] <= 8017 and 800 <= sizes[1] <= 817, text
    assert "a joblib object array: joblib unpickles the pickle that follows" in text, text
    assert "'tail': 'the end'" in text, text
    assert "<cannot read" not in text and "stops here" not in text, text


class _SystemCall:
    """Pickles as os.system(cmd); only ever dumped here, never loaded."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        import os
        return (os.system, (self.cmd,))


def test_explain_renders_object_array_calls(pg_bin, tmp_path):
    """What a joblib object array's own pickle does is in "What loading would do", where
    joblib loads it, with the marks of its findings."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    from fractions import Fraction
    marker = tmp_path / "PWNED"
    f = tmp_path / "objects.joblib"
    joblib.dump({"objects": np.array([Fraction(1, 3), _SystemCall(f"touch {marker}"), "x"],
                                     dtype=object),
                 "more": np.array([Fraction(2, 3)], dtype=object), "tail": "the end"}, f)
    proc = run(pg_bin, "explain", f, "--no-config")
    assert proc.returncode == 1, proc.stdout.decode()
    text = proc.stdout.decode()
    doing = text.split("What loading would do:")[1].split("Findings:")[0]
    lines = doing.splitlines()
    head = next(i for i, l in enumerate(lines) if "# joblib object array at byte" in l)
    end = next(i for i, l in enumerate(lines) if "# end of the object array" in l)
    inner = "\n".join(lines[head:end])
    assert "Fraction(1, 3)" in inner, doing
    call = next(l for l in lines[head:end] if f"system('touch {marker}')" in l)
    assert "<- CRITICAL REDUCE_CALL" in call, doing
    # The outer pickle's result comes after the array it holds.
    assert any("return {'objects': " in l for l in lines[end:]), doing
    # Each block names its results apart from the outer pickle's and the other block's.
    assigned = [re.match(r"\s*\d+\s+(\w+) = ", l) for l in lines]
    names = [m.group(1) for m in assigned if m]
    assert len(names) == len(set(names)), doing
    assert "return _a1_v0" in inner and "_a1_v2 = Fraction(1, 3)" in inner, doing
    assert any("_a2_v" in l and "Fraction(2, 3)" in l for l in lines[end:]), doing
    assert not marker.exists()


def _raw_controls(text: str) -> list[str]:
    """The control characters in `text` other than newline: C0, DEL and C1 (U+009B is a CSI
    some terminals honour)."""
    return [c for c in text if c != "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F)]


def test_text_output_escapes_control_characters_of_the_file(pg_bin, tmp_path):
    """A string in a scanned pickle cannot inject terminal control sequences into `scan`'s
    and `explain`'s text: every C0, DEL and C1 character is written escaped, as repr does."""
    marker = tmp_path / "PWNED"
    hostile = f"echo \x9b2J\x1b]0;owned\x07\x7f\x85\x9f; touch {marker}"
    cmd = hostile.encode("utf-8")
    f = tmp_path / "controls.pkl"
    f.write_bytes(b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c" + bytes([len(cmd)]) + cmd
                  + b"\x85R.")
    escaped = "echo \\x9b2J\\x1b]0;owned\\x07\\x7f\\x85\\x9f; touch "
    for args in (("scan", f), ("explain", "--color", "never", f)):
        proc = run(pg_bin, *args, "--no-config")
        assert proc.returncode == 1, proc.stderr.decode()
        text = proc.stdout.decode("utf-8")
        assert escaped in text, text
        assert _raw_controls(text) == [], (args[0], text)
    assert not marker.exists()


def test_broken_pipe(pg_bin, tmp_path):
    make_tree(tmp_path / "tree", 300, tmp_path / "PWNED")
    p = subprocess.Popen(
        [str(pg_bin), "scan", str(tmp_path / "tree"), "--no-config"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read()
    code = p.wait(timeout=60)
    assert code in (0, 1), (code, err)
    assert b"panicked" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shells")
def test_completions(pg_bin):
    for shell in ("bash", "zsh", "fish"):
        proc = run(pg_bin, "completions", shell)
        assert proc.returncode == 0 and b"scan" in proc.stdout
