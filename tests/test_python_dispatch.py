"""``safe_load``'s dispatcher asks the core what a file is and how its pickle is read (issues
16 and 19): a large joblib dump is never unpickled as a plain pickle (the concurrent scan's
verdict diverts it to joblib's unpickler before its first global), a legacy torch file is
recognised whatever pickle protocol wrote it, and ``[tool.pickleguard]`` is checked exactly
like a policy file. Real joblib, numpy, pandas and torch; real zip files."""

from __future__ import annotations

import io
import pickle
import subprocess
import zipfile

import pytest

import pickleguard
from pickleguard import PickleGuard, PickleSecurityError, _native
from pickleguard._codecs import HEAD_BYTES, sniff
from pickleguard._gate import GATE_MIN_BYTES
from test_python_support import (SystemPayload, assert_no_marker, in_tmp,  # noqa: F401
                                 system_payload)

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")


def _zip_one(path, name, data, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr(name, data)


def _joblib_dump(path, obj):
    joblib.dump(obj, path)
    return path.read_bytes()


@pytest.mark.parametrize("lead", [0, 200_000], ids=["wrapper-first", "wrapper-after-64k"])
@pytest.mark.parametrize("zipped", [False, True], ids=["file", "zip"])
def test_a_large_joblib_dump_is_read_by_joblibs_unpickler(in_tmp, lead, zipped):
    """The array bytes of a joblib dump follow its wrapper in the stream: read as pickle
    opcodes they would be another program. Here they ARE a payload pickle; the dump, over the
    concurrent-scan size and with its wrapper beyond the first 64 KiB or not, loads to the
    same array bytes and runs nothing (plain file, and the one member of a zip)."""
    payload = system_payload("joblib-array-bytes")
    arr = np.frombuffer(payload * (GATE_MIN_BYTES // len(payload) + 1), dtype=np.uint8)
    obj = {"lead": "x" * lead, "arr": arr}
    data = _joblib_dump(in_tmp / "d.joblib", obj)
    assert len(data) > GATE_MIN_BYTES
    assert (b"joblib.numpy_pickle" in data[:1 << 16]) == (lead == 0)
    target = in_tmp / "d.joblib"
    if zipped:
        target = in_tmp / "d.zip"
        _zip_one(target, "d.joblib", data)
    loads = [lambda: pickleguard.safe_load(target),
             lambda: pickleguard.safe_loads(target.read_bytes())]
    if zipped:
        # (A file object of a raw pickle is read with pickle.load's semantics instead.)
        loads.append(lambda: PickleGuard("ml").load(io.BytesIO(target.read_bytes())))
    for load in loads:
        got = load()
        assert got["lead"] == obj["lead"]
        assert got["arr"].tobytes() == arr.tobytes()
    assert_no_marker("joblib-array-bytes")


def test_a_payload_after_a_large_joblib_dumps_arrays_is_refused(in_tmp):
    """The diverted load keeps the verdict of the concurrent scan: a payload global after the
    arrays is refused, in a file and in a zip, and never runs."""
    arr = np.arange(GATE_MIN_BYTES // 8 + 10, dtype=np.int64)
    joblib.dump({"arr": arr}, in_tmp / "ok.joblib")
    joblib.dump({"arr": arr, "p": SystemPayload("joblib-after")}, in_tmp / "bad.joblib")
    _zip_one(in_tmp / "bad.zip", "bad.joblib", (in_tmp / "bad.joblib").read_bytes())
    assert (pickleguard.safe_load(in_tmp / "ok.joblib")["arr"] == arr).all()
    for target in (in_tmp / "bad.joblib", in_tmp / "bad.zip"):
        with pytest.raises(PickleSecurityError):
            pickleguard.safe_load(target)
    assert_no_marker("joblib-after")


def test_a_large_pandas_pkl_zip_loads_and_a_bad_one_is_refused(in_tmp):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": np.arange(200_000, dtype=np.float64),
                       "b": np.arange(200_000, dtype=np.int64)})
    df.to_pickle(in_tmp / "df.pkl.zip")
    with zipfile.ZipFile(in_tmp / "df.pkl.zip") as z:
        (member,) = z.infolist()
        assert member.compress_type == zipfile.ZIP_DEFLATED
        assert member.file_size > GATE_MIN_BYTES
    got = pickleguard.safe_load(in_tmp / "df.pkl.zip")
    pd.testing.assert_frame_equal(got, df)
    assert pickleguard.scan_file(in_tmp / "df.pkl.zip").format == "pandas_zip"
    pd.to_pickle({"df": df, "p": SystemPayload("pkl-zip")}, in_tmp / "bad.pkl.zip")
    with pytest.raises(PickleSecurityError):
        pickleguard.safe_load(in_tmp / "bad.pkl.zip")
    assert_no_marker("pkl-zip")


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_legacy_torch_file_is_loaded_by_torch_whatever_its_protocol(in_tmp, protocol):
    """The core decides what a legacy torch file is (its magic number's pickle, in any
    protocol): ``safe_load`` hands it to ``torch.load``, as the scan reads it (a protocol 4
    file used to load as its first pickle, the magic number)."""
    torch = pytest.importorskip("torch")
    sd = {"w": torch.arange(6.0)}
    torch.save(sd, in_tmp / "m.pt", _use_new_zipfile_serialization=False,
               pickle_protocol=protocol)
    data = (in_tmp / "m.pt").read_bytes()
    assert sniff(data[:HEAD_BYTES]) == "torch_legacy"
    assert pickleguard.scan_file(in_tmp / "m.pt").format == "pytorch_legacy"
    for got in (pickleguard.safe_load(in_tmp / "m.pt"), pickleguard.safe_loads(data),
                pickleguard.safe_load(io.BytesIO(data))):
        assert torch.equal(got["w"], sd["w"])


def test_sniff_is_the_cores():
    assert sniff(pickle.dumps(1, protocol=4)) == "pickle"
    assert not _native.is_torch_legacy(pickle.dumps(119547037146038801333356, protocol=4)[:8])
    assert _native.is_torch_legacy(pickle.dumps(0x1950a86a20f9469cfc6c, protocol=4))
    assert _native.is_torch_legacy(pickle.dumps(0x1950a86a20f9469cfc6c, protocol=0))
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a.pkl")
        body = pickle.dumps([1])
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    assert sniff(buf.getvalue()) == "tar" == _native.container_kind(buf.getvalue())
    # A zip's magic inside the first 64 bytes of a pickle is not a zip: only the start counts.
    assert sniff(pickle.dumps(b"PK\x03\x04", protocol=4)) == "pickle"


BAD_ENTRY = ('version = 2\n[[allow]]\nmodule = "collections"\nname = "*"\n'
             'ops = ["call"]\n')


def test_a_bad_pyproject_entry_is_refused_like_a_bad_policy_file(tmp_path, pg_bin):
    """``[tool.pickleguard]`` gets the policy file's entry checks, with the same error, in
    Python and in the command line, also where the config is only used to tighten (found
    inside a scanned path: it extends no policy, and skipped the checks)."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "pickleguard.toml").write_text(BAD_ENTRY)
    py = tmp_path / "py"
    py.mkdir()
    (py / "pyproject.toml").write_text(
        "[tool.pickleguard]\n" + BAD_ENTRY.replace("[[allow]]", "[[tool.pickleguard.allow]]"))
    errors = []
    for d, name in ((own, "pickleguard.toml"), (py, "pyproject.toml")):
        with pytest.raises(ValueError) as ei:
            PickleGuard("ml", policy_file=d / name)
        # Named as the command line names it.
        assert str(ei.value).startswith(f"{d / name}: ")
        errors.append(str(ei.value).replace(str(d / name), "<config>"))
    assert "a wildcard grants only `value`" in errors[0]
    assert errors[0] == errors[1]
    cli = []
    for d in (own, py):
        (d / "x.pkl").write_bytes(pickle.dumps([1]))
        # Found in the working directory, which is scanned: used only to tighten.
        proc = subprocess.run([str(pg_bin), "scan", "."], cwd=d,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
        cli.append(proc.stderr.replace(str(d), "<dir>"))
    assert "a wildcard grants only `value`" in cli[0]
    assert cli[0].replace("pickleguard.toml", "<config>") == \
        cli[1].replace("pyproject.toml", "<config>")
