"""``.npy`` and ``.npz`` files read through a guard, as numpy reads them: numbers by numpy,
an object array's pickle by the restricted unpickler (scanned from exactly the bytes numpy's
reader would unpickle). Shared by ``safe_load`` and the ``numpy.load`` integration."""

from __future__ import annotations

import io
from typing import Any, Callable, Dict

from ._io import MemoryReader, span_of_buffer

__all__ = ["read_npy_header", "npy_header", "load_npy", "npz_file", "load_npz"]


def read_npy_header(reader: MemoryReader) -> Any:
    import numpy as np
    fmt = np.lib.format
    version = fmt.read_magic(reader)
    read_header = getattr(fmt, "_read_array_header", None)
    if read_header is not None:
        return read_header(reader, version, max_header_size=2 ** 64)
    if version == (1, 0):
        return fmt.read_array_header_1_0(reader)
    return fmt.read_array_header_2_0(reader)


def npy_header(reader: MemoryReader) -> Any:
    """numpy's own header parse (``ast.literal_eval``), with every failure a ``ValueError``:
    a spurious ``SystemError`` of the AST converter under threads (see
    ``_analysis.literal_or``) is retried once, anything else is a bad header."""
    start = reader.pos
    for attempt in range(2):
        reader.pos = start
        try:
            return read_npy_header(reader)
        except SystemError as e:
            if attempt:
                raise ValueError(f"the .npy header could not be parsed: {e}") from e
        except ValueError:
            raise
        except Exception as e:
            raise ValueError(f"the .npy header could not be parsed: {e!r}") from e
    raise AssertionError("unreachable")


def load_npy(guard: Any, data: Any, kwargs: Dict[str, Any]) -> Any:
    """An ``.npy`` file's array: numbers by numpy, an object array's pickle by the guard."""
    import numpy as np
    reader = MemoryReader(data, as_bytes=True)
    try:
        shape, fortran, dtype = npy_header(reader)
    except ValueError as e:
        # Not a header numpy can read: nothing after it is judged, so nothing is loaded.
        raise guard._refuse("malformed .npy header", str(e), "<npy>", "HIGH",
                            "MALFORMED") from e
    if not dtype.hasobject:
        return np.load(io.BytesIO(bytes(memoryview(data))), allow_pickle=False)
    pk = {"encoding": kwargs.get("encoding", "ASCII"),
          "fix_imports": kwargs.get("fix_imports", True)}
    # The object array's pickle follows the header: scanned (with the whole file above) and
    # loaded by the restricted unpickler, as numpy's read_array does with pickle.load.
    return guard._load_span(span_of_buffer(data, reader.pos), "<npy object array>", pk)


def _npz_class() -> type:
    from numpy.lib._npyio_impl import NpzFile

    class GuardedNpzFile(NpzFile):  # type: ignore[misc,valid-type]
        """``NpzFile`` whose object arrays load through a guard."""

        _pg_guard: Any = None
        _pg_kwargs: Any = None

        def __getitem__(self, key: str) -> Any:
            guard = self._pg_guard
            if guard is None:
                return super().__getitem__(key)
            from numpy.lib import format as fmt

            try:
                member = self._files[key]  # type: ignore[attr-defined]
            except KeyError:
                raise KeyError(f"{key} is not a file in the archive") from None
            # One pass over the member, as numpy's own __getitem__: its header says whether
            # numpy reads it (numbers) or the guard does (objects); the seeks back stay in
            # zipfile's buffer, so nothing is inflated twice.
            with self.zip.open(member) as f:  # type: ignore[union-attr]
                magic = f.read(len(fmt.MAGIC_PREFIX))
                f.seek(0)
                if magic != fmt.MAGIC_PREFIX:
                    return f.read()
                _shape, _fortran, dtype = read_npy_header(f)  # type: ignore[arg-type]
                f.seek(0)
                if not dtype.hasobject:
                    # numpy's NpzFile keeps its max_header_size (default 10000) since 1.24.
                    limit = getattr(self, "max_header_size", 10000)
                    kw: Any = self.pickle_kwargs
                    return fmt.read_array(f, allow_pickle=False, pickle_kwargs=kw,
                                          max_header_size=limit)
                blob = f.read()
            # The archive's pre-load scan checked this member's header (npz_load) and left
            # its pickle to this load: scanned from exactly what zipfile inflated.
            return load_npy(guard, blob, self._pg_kwargs or {})

    return GuardedNpzFile


_NPZ: Any = None


def npz_file(guard: Any, fid: Any, own_fid: bool, pickle_kwargs: Any, **kw: Any) -> Any:
    """numpy's ``NpzFile`` of ``fid`` whose object arrays load through ``guard``."""
    global _NPZ
    if _NPZ is None:
        _NPZ = _npz_class()
    z = _NPZ(fid, own_fid=own_fid, allow_pickle=False, pickle_kwargs=pickle_kwargs, **kw)
    z._pg_guard = guard
    z._pg_kwargs = pickle_kwargs
    return z


def load_npz(guard: Any, opener: Callable[[], Any], kwargs: Dict[str, Any]) -> Any:
    """``safe_load`` of an ``.npz``: a dict of its arrays."""
    pk = {"encoding": kwargs.get("encoding", "ASCII"),
          "fix_imports": kwargs.get("fix_imports", True)}
    with opener() as f:
        # The guarded NpzFile numpy.load under install() returns: object arrays scanned and
        # loaded from what zipfile inflates, once.
        with npz_file(guard, f, False, pk) as npz:
            return {key: npz[key] for key in npz.files}
