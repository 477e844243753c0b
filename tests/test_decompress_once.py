"""Each compressed container is decompressed once by a guarded load, and what is loaded is
what was scanned.

Real files made by joblib, pandas, torch and the standard library; real loaders. Every
decompressor the process creates is wrapped (tests/decompress_count.py) and the bytes it
produces are added up: a guarded load must produce exactly the decompressed stream once, and
the Rust core must never be handed the compressed bytes as well (it would decompress them a
second time). A payload in each kind is refused by ``safe_load``, by the loader under
``install()`` and by ``pickleguard scan``, and never runs.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import warnings
import zlib

import pytest

import pickleguard
from decompress_count import counting
from pickleguard import PickleSecurityError, safe_load
from test_python_support import SystemPayload, assert_no_marker, in_tmp  # noqa: F401

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
joblib = pytest.importorskip("joblib")
torch = pytest.importorskip("torch")

try:
    import lz4.frame as lz4f
except ImportError:  # pragma: no cover - lz4 is in the lock file
    lz4f = None
try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None


def _plain(data: bytes) -> bytes:
    """The decompressed stream, by the library of its magic (outside any counting)."""
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    if data.startswith(b"BZh"):
        return bz2.decompress(data)
    if data.startswith(b"\xfd7zXZ\x00") or data[:1] == b"\x5d":
        return lzma.decompress(data)
    if data.startswith(b"\x04\x22\x4d\x18"):
        return lz4f.decompress(data)
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return zlib.decompress(data)


def _once(fn, plain_len):
    """Run ``fn`` counting decompression; assert the stream was decompressed exactly once
    (in Python) and the core was never given compressed bytes. Returns ``fn()``."""
    with counting() as c:
        out = fn()
    assert c.total() == plain_len, (c.out, c.made, plain_len)
    assert not [k for k in c.core if k[1] == "compressed"], c.core
    return out


def _obj():
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(300, 200)), "b": list(range(5000)), "c": "x" * 1000}


def _same(a, b):
    assert set(a) == set(b)
    np.testing.assert_array_equal(a["a"], b["a"])
    assert a["b"] == b["b"] and a["c"] == b["c"]


JOBLIB_KINDS = ["zlib", "gzip", "bz2", "xz", "lzma"] + (["lz4"] if lz4f else [])


@pytest.mark.parametrize("comp", JOBLIB_KINDS)
def test_joblib_compressed_decompressed_once(in_tmp, comp):
    obj = _obj()
    joblib.dump(obj, "m.joblib", compress=(comp, 3))
    n = len(_plain(open("m.joblib", "rb").read()))
    assert n > 400_000  # a second decompression could not hide in any slack
    _same(_once(lambda: safe_load("m.joblib"), n), obj)
    pickleguard.install()
    try:
        _same(_once(lambda: joblib.load("m.joblib"), n), obj)
        with open("m.joblib", "rb") as f:
            _same(_once(lambda: joblib.load(f), n), obj)  # joblib opens its decompressor
    finally:
        pickleguard.uninstall()


PANDAS_KINDS = ["gz", "bz2", "xz"] + (["zst"] if zstandard else [])


def _frame():
    rng = np.random.default_rng(1)
    return pd.DataFrame({"x": np.arange(50000), "y": rng.normal(size=50000),
                         "s": [f"r{i}" for i in range(50000)]})


@pytest.mark.parametrize("ext", PANDAS_KINDS)
def test_pandas_compressed_decompressed_once(in_tmp, ext):
    df = _frame()
    df.to_pickle(f"df.pkl.{ext}")
    n = len(_plain(open(f"df.pkl.{ext}", "rb").read()))
    pd.testing.assert_frame_equal(_once(lambda: safe_load(f"df.pkl.{ext}"), n), df)
    pickleguard.install()
    try:
        pd.testing.assert_frame_equal(_once(lambda: pd.read_pickle(f"df.pkl.{ext}"), n), df)
    finally:
        pickleguard.uninstall()


@pytest.mark.parametrize("ext", ["tar", "tar.gz", "tar.bz2"])
def test_pandas_tar_pickles_over_a_megabyte_load(in_tmp, ext):
    # A plain tar of 1 MiB or more was handed to the concurrent-scan path for raw pickles
    # and failed to load ("could not find MARK"); safe_load now opens the archive.
    df = _frame()
    df.to_pickle(f"df.pkl.{ext}")
    pd.testing.assert_frame_equal(safe_load(f"df.pkl.{ext}"), df)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(128, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, 8))


@pytest.mark.parametrize("legacy", [False, True])
def test_gzipped_torch_checkpoint_decompressed_once(in_tmp, legacy):
    net = _net()
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf, _use_new_zipfile_serialization=not legacy)
    raw = buf.getvalue()
    with gzip.open("ckpt.pt.gz", "wb") as g:
        g.write(raw)
    want = net.state_dict()

    def same(sd):
        assert list(sd) == list(want)
        for k in want:
            assert torch.equal(sd[k], want[k])

    def through_gzipfile(load, **kw):
        # Opened inside the count: a GzipFile makes its decompressor when it is created.
        with gzip.open("ckpt.pt.gz") as f:
            return load(f, **kw)

    same(_once(lambda: safe_load("ckpt.pt.gz"), len(raw)))
    same(_once(lambda: through_gzipfile(safe_load), len(raw)))
    pickleguard.install()
    try:
        for wo in (False, True):
            same(_once(lambda: through_gzipfile(torch.load, weights_only=wo), len(raw)))
    finally:
        pickleguard.uninstall()
    if not legacy:
        # torch's own zip reader seeks back and forth in the GzipFile: each backward seek
        # decompresses from the start again (what the guard no longer adds to).
        with counting() as c:
            same(through_gzipfile(torch.load))
        assert c.total() > 2 * len(raw)


@pytest.mark.parametrize("opener", [gzip.open, bz2.open, lzma.open])
def test_compressed_pickle_file_object_decompressed_once(in_tmp, opener):
    obj = _obj()
    data = pickle.dumps(obj, protocol=4)
    with opener("o.pkl.c", "wb") as f:
        f.write(data)
    def through(load):
        with opener("o.pkl.c") as f:
            return load(f)

    _same(_once(lambda: through(safe_load), len(data)), obj)
    pickleguard.install()
    try:
        _same(_once(lambda: through(pickle.load), len(data)), obj)
    finally:
        pickleguard.uninstall()


def test_gzip_bomb_through_a_file_object_is_bounded(in_tmp, installed):
    # 1 GiB of zeros in ~1 MB: the pre-scan of torch.load's GzipFile stops at the scan's
    # allowance instead of reading it all into memory.
    with gzip.open("bomb.pt.gz", "wb", compresslevel=9) as g:
        g.write(b"PK\x03\x04")  # a zip to safe_load's sniffing: read whole, not one pickle
        chunk = b"\0" * (1 << 20)
        for _ in range(1024):
            g.write(chunk)
    with gzip.open("bomb.pt.gz") as f, pytest.raises(PickleSecurityError) as e:
        torch.load(f, weights_only=False)
    assert any(x.type == "RESOURCE_LIMIT" for x in e.value.analysis.findings)
    with gzip.open("bomb.pt.gz") as f, pytest.raises(PickleSecurityError):
        safe_load(f)


# ------------------------------------------------------------------ deflated zip members
# A deflated member that a guarded load reads through zipfile (pandas' .pkl.zip, an .npz's
# object arrays) is inflated by zipfile alone: the pre-load scan reads only the first bytes it
# needs (the member's kind, an .npy header) and leaves the pickle to the load-time scan of what
# zipfile yields.

KIND_HEAD = 32  # bytes the core inflates to tell a pickle member from a nested container


def _zip_counts(fn):
    """(result, bytes inflated in Python, bytes the core's decoders produced)."""
    with counting() as c:
        out = fn()
    core = c.out.pop("core", 0)
    return out, sum(c.out.values()), core


def _member_sizes(path):
    import zipfile
    with zipfile.ZipFile(path) as z:
        return [i.file_size for i in z.infolist()]


def _npy_header_ends(path):
    """Where the array data starts in each member (its magic and header end there)."""
    import struct
    import zipfile
    ends = []
    with zipfile.ZipFile(path) as z:
        for i in z.infolist():
            head = z.read(i)[:12]
            ends.append(10 + struct.unpack_from("<H", head, 8)[0] if head[6] == 1
                        else 12 + struct.unpack_from("<I", head, 8)[0])
    return ends


def test_pandas_zip_member_inflated_once(in_tmp):
    df = _frame()
    df.to_pickle("df.pkl.zip")
    [n] = _member_sizes("df.pkl.zip")
    assert n > 400_000
    out, py, core = _zip_counts(lambda: safe_load("df.pkl.zip"))
    pd.testing.assert_frame_equal(out, df)
    assert py == n, (py, n)  # zipfile, for the load
    # The core's scan of the archive inflated only the member's first bytes (not a second
    # copy of it): 12 to see it is no .npy, KIND_HEAD to see it is a pickle.
    assert core <= 12 + KIND_HEAD, core
    with open("df.pkl.zip", "rb") as f:
        out, py, core = _zip_counts(lambda: safe_load(f))
    pd.testing.assert_frame_equal(out, df)
    assert (py, core <= 12 + KIND_HEAD) == (n, True)
    pickleguard.install()
    try:
        out, py, core = _zip_counts(lambda: pd.read_pickle("df.pkl.zip"))
    finally:
        pickleguard.uninstall()
    pd.testing.assert_frame_equal(out, df)
    assert (py, core) == (n, 0)


def _object_npz(path, compressed=True):
    objs = np.array([{"k": i, "v": [i, str(i)]} for i in range(20000)], dtype=object)
    arrays = {"num": np.arange(200_000), "objs": objs,
              "mixed": np.array(["s" * 50, 1, 2.5, None] * 2000, dtype=object)}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays


def _same_arrays(got, want):
    assert set(got) == set(want)
    for k in want:
        if want[k].dtype == object:
            assert list(got[k]) == list(want[k])
        else:
            np.testing.assert_array_equal(got[k], want[k])


def _np_load_all(path):
    with np.load(path, allow_pickle=True) as z:
        return {k: z[k] for k in z.files}


def test_npz_object_arrays_inflated_once(in_tmp):
    want = _object_npz("a.npz")
    n = sum(_member_sizes("a.npz"))
    headers = sum(_npy_header_ends("a.npz"))
    # numpy's own load inflates each member once: the figure a guarded load must match.
    got, native, core = _zip_counts(lambda: _np_load_all("a.npz"))
    _same_arrays(got, want)
    assert (native, core) == (n, 0)
    got, py, core = _zip_counts(lambda: safe_load("a.npz"))
    _same_arrays(got, want)
    # The core read each member's magic and header (their ambiguity checks stay in the
    # pre-load scan) and nothing more; zipfile inflated every member once.
    assert (py, core) == (n, headers)
    pickleguard.install()
    try:
        got, py, core = _zip_counts(lambda: _np_load_all("a.npz"))
    finally:
        pickleguard.uninstall()
    _same_arrays(got, want)
    assert (py, core) == (n, headers)


def test_stored_npz_and_zip_members_unchanged(in_tmp):
    # Stored members cost no inflation: the pre-load scan still analyses them whole.
    want = _object_npz("s.npz", compressed=False)
    got, py, core = _zip_counts(lambda: safe_load("s.npz"))
    _same_arrays(got, want)
    assert (py, core) == (0, 0)


def test_zip_bomb_member_refused_by_its_declared_size(in_tmp):
    # 1 GiB of zeros deflated to ~1 MB, as pandas writes a .pkl.zip: the pre-load scan refuses
    # it from the size the member declares (zipfile inflates exactly that much) without
    # inflating it, and pickleguard scan refuses it by inflating.
    import zipfile
    with zipfile.ZipFile("bomb.pkl.zip", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("bomb.pkl", "w", force_zip64=True) as w:
            w.write(b"\x80\x04\x8e" + (1 << 30).to_bytes(8, "little"))  # BINBYTES8 of 1 GiB
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                w.write(chunk)
    with counting() as c, pytest.raises(PickleSecurityError) as e:
        safe_load("bomb.pkl.zip")
    assert any(f.type == "RESOURCE_LIMIT" for f in e.value.analysis.findings)
    assert c.total() <= 12 + KIND_HEAD, c.out
    assert pickleguard.scan_file("bomb.pkl.zip").is_safe is False


# ------------------------------------------------------------------ payloads, every kind

def _payload_files(name):
    """(path, how the installed loader opens it) for a payload in each compressed kind."""
    evil = {"arr": np.arange(10), "evil": SystemPayload(name)}
    out = []
    for comp in JOBLIB_KINDS:
        p = f"e.{comp}.joblib"
        joblib.dump(evil, p, compress=(comp, 3))
        out.append((p, lambda p=p: joblib.load(p)))
    for ext in PANDAS_KINDS:
        p = f"e.pkl.{ext}"
        pd.to_pickle(evil, p)
        out.append((p, lambda p=p: pd.read_pickle(p)))
    for legacy in (False, True):
        buf = io.BytesIO()
        torch.save(evil, buf, _use_new_zipfile_serialization=not legacy)
        p = f"e{int(legacy)}.pt.gz"
        with gzip.open(p, "wb") as g:
            g.write(buf.getvalue())

        def tl(p=p):
            with gzip.open(p) as f:
                return torch.load(f, weights_only=False)
        out.append((p, tl))
    # Deflated zip members the guarded load inflates and scans itself.
    pd.to_pickle(evil, "e.pkl.zip")
    out.append(("e.pkl.zip", lambda: pd.read_pickle("e.pkl.zip")))
    np.savez_compressed("e.npz", num=np.arange(1000),
                        objs=np.array([{"i": 1}, SystemPayload(name)], dtype=object))
    out.append(("e.npz", lambda: _np_load_all("e.npz")))
    for opener, ext in ((gzip.open, "gz"), (bz2.open, "bz2"), (lzma.open, "xz")):
        p = f"e.pkl.{ext}"
        with opener(p, "wb") as f:
            pickle.dump(evil, f, protocol=4)

        def pl(p=p, opener=opener):
            with opener(p) as f:
                return pickle.load(f)
        out.append((p + " (pickle.load)", pl))
    return out


def test_payload_in_each_compressed_kind_refused_before_it_runs(in_tmp, scan):
    name = "decompress-once"
    files = _payload_files(name)
    for label, installed_load in files:
        path = label.split(" ")[0]
        assert scan(path)["is_safe"] is False, label
        assert pickleguard.scan_file(path).is_safe is False, label
        with pytest.raises(PickleSecurityError):
            safe_load(path)
        with open(path, "rb") as f, pytest.raises(PickleSecurityError):
            safe_load(f)
        pickleguard.install()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with pytest.raises(PickleSecurityError):
                    installed_load()
        finally:
            pickleguard.uninstall()
        assert_no_marker(name)


def _npy_with_header(npy: bytes, header: str) -> bytes:
    import struct
    h = header + " " * ((-(10 + len(header) + 1)) % 64) + "\n"
    hlen = struct.unpack_from("<H", npy, 8)[0]
    return npy[:8] + struct.pack("<H", len(h)) + h.encode("latin1") + npy[10 + hlen:]


@pytest.mark.parametrize("numpy_reads", ["objects", "numbers"])
def test_deflated_npz_member_with_a_repeated_header_key_refused_everywhere(in_tmp, scan,
                                                                            numpy_reads):
    # The .npy header ambiguity (numpy keeps the last 'descr', other readers the first) stays
    # a finding of the pre-load scan when the member's pickle is left to the load.
    import zipfile
    name = f"npz-header-{numpy_reads}"
    buf = io.BytesIO()
    np.save(buf, np.array([1, SystemPayload(name)], dtype=object), allow_pickle=True)
    descrs = ["'descr': '<f8'", "'descr': '|O'"]
    if numpy_reads == "numbers":
        descrs.reverse()
    header = "{" + descrs[0] + ", 'fortran_order': False, 'shape': (2,), " + descrs[1] + ", }"
    evil = _npy_with_header(buf.getvalue(), header)
    with zipfile.ZipFile("h.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("num.npy", _npy_bytes(np.arange(100)))
        z.writestr("arr.npy", evil)
    report = scan("h.npz")
    assert report["is_safe"] is False
    assert any(f["type"] == "STRUCTURAL_TAMPER" for f in report["findings"])
    assert pickleguard.scan_file("h.npz").is_safe is False
    with pytest.raises(PickleSecurityError):
        safe_load("h.npz")
    pickleguard.install()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(PickleSecurityError):
                _np_load_all("h.npz")
    finally:
        pickleguard.uninstall()
    assert_no_marker(name)


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()
