"""Thrift *binary protocol* as a value tree, for the X Chat events (see ``xchat_thrift`` for the typed structs).

Decodes any well-formed struct within the limits into ``TStruct``/``TList``/``TMap`` values and re-encodes it
byte for byte (fields in ascending id order, as Thrift encoders write them). Malformed input — truncation,
trailing bytes, unknown wire types, repeated field ids, bools other than 0/1, excess size or nesting — raises
``ThriftError`` (a ``ValueError``): the emulator decodes what clients post.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from typing import Any, TypeAlias

T_STOP, T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64, T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST = (
    0, 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15)  # fmt: skip
_FIXED = {T_BYTE: ">b", T_DOUBLE: ">d", T_I16: ">h", T_I32: ">i", T_I64: ">q"}
_TYPES = frozenset({T_BOOL, T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST, *_FIXED})

MAX_BYTES = 1 << 20  # decoded size of one encoded event or part (X refuses big contents anyway)
MAX_DEPTH = 12  # nesting of structs and containers; the deepest real event needs 5
MAX_ITEMS = 10_000  # elements of one list, set or map
_B64 = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


class ThriftError(ValueError):
    """Input that is not a well-formed X Chat Thrift structure (or not one of the expected shape)."""


@dataclass(frozen=True)
class TStruct:
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class TList:
    etype: int
    items: tuple[Value, ...]
    is_set: bool = False


@dataclass(frozen=True)
class TMap:
    ktype: int
    vtype: int
    items: tuple[tuple[Value, Value], ...]


Value: TypeAlias = "bool | int | float | bytes | TStruct | TList | TMap"
Field: TypeAlias = "tuple[int, int, Value]"  # (field id, wire type, value)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ThriftError(f"truncated at byte {self.pos}")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def fixed(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self, *types: int) -> int:
        n: int = self.fixed(">i")
        if any(t not in _TYPES for t in types):
            raise ThriftError(f"unknown element type at byte {self.pos}")
        if n < 0 or n > MAX_ITEMS or n > len(self.data) - self.pos:
            raise ThriftError(f"bad container size {n} at byte {self.pos}")
        return n

    def value(self, ttype: int, depth: int) -> Value:
        if ttype == T_BOOL:
            b = self.take(1)[0]
            if b > 1:
                raise ThriftError(f"bad bool {b} at byte {self.pos}")
            return b == 1
        if ttype in _FIXED:
            v: int | float = self.fixed(_FIXED[ttype])
            return v
        if ttype == T_STRING:
            return self.take(self.fixed(">i"))
        if depth >= MAX_DEPTH:
            raise ThriftError("nested too deep")
        if ttype == T_STRUCT:
            return self.struct(depth + 1)
        if ttype in (T_LIST, T_SET):
            et = self.take(1)[0]
            return TList(et, tuple(self.value(et, depth + 1) for _ in range(self.count(et))), ttype == T_SET)
        if ttype == T_MAP:
            kt, vt = self.take(2)
            n = self.count(kt, vt)
            return TMap(kt, vt, tuple((self.value(kt, depth + 1), self.value(vt, depth + 1)) for _ in range(n)))
        raise ThriftError(f"unknown wire type {ttype} at byte {self.pos}")

    def struct(self, depth: int) -> TStruct:
        out: list[Field] = []
        while (ttype := self.take(1)[0]) != T_STOP:
            fid: int = self.fixed(">h")
            if fid < 1 or any(f[0] == fid for f in out):
                raise ThriftError(f"bad or repeated field id {fid} at byte {self.pos}")
            out.append((fid, ttype, self.value(ttype, depth)))
        return TStruct(tuple(out))


def decode_struct(data: bytes) -> TStruct:
    """One whole Thrift binary struct; trailing bytes, truncation, unknown types or excess nesting raise."""
    if len(data) > MAX_BYTES:
        raise ThriftError(f"{len(data)} bytes is over the {MAX_BYTES} limit")
    reader = _Reader(data)
    out = reader.struct(0)
    if reader.pos != len(data):
        raise ThriftError(f"{len(data) - reader.pos} bytes after the end of the struct")
    return out


def _write(out: bytearray, ttype: int, v: Value) -> None:
    if ttype == T_BOOL and isinstance(v, bool):
        out.append(1 if v else 0)
    elif ttype in _FIXED and isinstance(v, int | float) and not isinstance(v, bool):
        out += struct.pack(_FIXED[ttype], v)
    elif ttype == T_STRING and isinstance(v, bytes):
        out += struct.pack(">i", len(v)) + v
    elif ttype == T_STRUCT and isinstance(v, TStruct):
        for fid, ft, fv in sorted(v.fields, key=lambda f: f[0]):
            out += struct.pack(">bh", ft, fid)
            _write(out, ft, fv)
        out.append(T_STOP)
    elif ttype in (T_LIST, T_SET) and isinstance(v, TList):
        out += struct.pack(">bi", v.etype, len(v.items))
        for item in v.items:
            _write(out, v.etype, item)
    elif ttype == T_MAP and isinstance(v, TMap):
        out += struct.pack(">bbi", v.ktype, v.vtype, len(v.items))
        for k, item in v.items:
            _write(out, v.ktype, k)
            _write(out, v.vtype, item)
    else:
        raise ThriftError(f"cannot write {type(v).__name__} as wire type {ttype}")


def encode_struct(value: TStruct) -> bytes:
    out = bytearray()
    _write(out, T_STRUCT, value)
    return bytes(out)


def b64decode(text: str | bytes, what: str = "input") -> bytes:
    """Standard or URL-safe base64, padding optional (X writes padded standard base64; signatures unpadded)."""
    s = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    if not isinstance(s, str) or len(s) > MAX_BYTES * 4 // 3 + 4 or not _B64.fullmatch(s):
        raise ThriftError(f"{what} is not base64")
    s = s.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
    except binascii.Error as exc:
        raise ThriftError(f"{what} is not base64: {exc}") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
