"""Where a field of a kernel structure lies in the running kernel, read from
its BTF (/sys/kernel/btf/vmlinux).

The programs are compiled against whatever kernel headers are installed,
which need not be the running kernel's, so a program that must read a
kernel structure is given the field's offset at load time instead: read
here from the type information the kernel itself publishes (the format of
include/uapi/linux/btf.h)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

VMLINUX = Path("/sys/kernel/btf/vmlinux")

BTF_MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
_MEMBER = struct.Struct("<III")

KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 1, 2, 3, 4, 5, 6
KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT = 8, 9, 10, 11
KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC, KIND_DECL_TAG, KIND_TYPE_TAG = 13, 14, 15, 17, 18
KIND_ENUM64 = 19
#: bytes that follow a type's common part: fixed, or per member (vlen)
_FIXED_EXTRA = {KIND_INT: 4, KIND_ARRAY: 12, KIND_VAR: 4, KIND_DECL_TAG: 4}
_PER_MEMBER = {
    KIND_STRUCT: 12,
    KIND_UNION: 12,
    KIND_ENUM: 8,
    KIND_FUNC_PROTO: 8,
    KIND_DATASEC: 12,
    KIND_ENUM64: 12,
}
#: kinds that only qualify or rename another type
_QUALIFIERS = {KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG}


class BtfError(ValueError):
    """The type information cannot be read, or lacks what was asked."""


@dataclass(frozen=True)
class _Type:
    name: str
    kind: int
    #: the type it refers to (qualifiers, typedefs, pointers)
    ref: int
    #: struct and union members: (name, type id, bit offset)
    members: tuple[tuple[str, int, int], ...] = ()


class KernelTypes:
    """The structures and unions of one BTF blob, by name."""

    def __init__(self, blob: bytes, source: str = "BTF") -> None:
        self.source = source
        if len(blob) < _HEADER.size:
            raise BtfError(f"{source}: {len(blob)} bytes, shorter than a BTF header")
        magic, _, _, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(blob)
        if magic != BTF_MAGIC:
            raise BtfError(f"{source}: not BTF (magic 0x{magic:04x})")
        types = blob[hdr_len + type_off : hdr_len + type_off + type_len]
        strings = blob[hdr_len + str_off : hdr_len + str_off + str_len]
        if len(types) != type_len or len(strings) != str_len:
            raise BtfError(f"{source}: truncated (sections run past the end)")
        self._strings = strings
        self.types: list[_Type | None] = [None]  # id 0 is void
        self.by_name: dict[str, int] = {}
        self._parse(types)

    def _name(self, offset: int) -> str:
        end = self._strings.find(b"\0", offset)
        if offset >= len(self._strings) or end < 0:
            raise BtfError(f"{self.source}: a name outside the string section")
        return self._strings[offset:end].decode()

    def _parse(self, types: bytes) -> None:
        pos = 0
        while pos < len(types):
            if pos + _TYPE.size > len(types):
                raise BtfError(f"{self.source}: a type cut short at byte {pos}")
            name_off, info, size_or_type = _TYPE.unpack_from(types, pos)
            pos += _TYPE.size
            kind, vlen, kind_flag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
            extra = _FIXED_EXTRA.get(kind, 0) + _PER_MEMBER.get(kind, 0) * vlen
            if pos + extra > len(types):
                raise BtfError(f"{self.source}: a type cut short at byte {pos}")
            members: tuple[tuple[str, int, int], ...] = ()
            if kind in (KIND_STRUCT, KIND_UNION):
                found = []
                for i in range(vlen):
                    m_name, m_type, m_offset = _MEMBER.unpack_from(types, pos + i * _MEMBER.size)
                    bits = m_offset & 0xFFFFFF if kind_flag else m_offset
                    found.append((self._name(m_name), m_type, bits))
                members = tuple(found)
            pos += extra
            name = self._name(name_off)
            ref = size_or_type if kind in _QUALIFIERS or kind == KIND_PTR else 0
            self.types.append(_Type(name, kind, ref, members))
            if kind in (KIND_STRUCT, KIND_UNION) and name:
                self.by_name.setdefault(name, len(self.types) - 1)

    def _resolved(self, type_id: int) -> _Type | None:
        seen = 0
        t = self.types[type_id] if type_id < len(self.types) else None
        while t is not None and t.kind in _QUALIFIERS and seen < 32:
            t = self.types[t.ref] if t.ref < len(self.types) else None
            seen += 1
        return t

    def _find(self, t: _Type, name: str) -> tuple[int, int] | None:
        """(bit offset, type id) of member `name`, looked for in anonymous
        members too, as C finds it."""
        for m_name, m_type, bits in t.members:
            if m_name == name:
                return bits, m_type
        for m_name, m_type, bits in t.members:
            inner = self._resolved(m_type)
            if not m_name and inner is not None and inner.kind in (KIND_STRUCT, KIND_UNION):
                found = self._find(inner, name)
                if found is not None:
                    return bits + found[0], found[1]
        return None

    def offset(self, struct_name: str, path: str) -> int:
        """Byte offset of `path` ("nd_net.net") in `struct struct_name`."""
        type_id = self.by_name.get(struct_name)
        if type_id is None:
            raise BtfError(f"{self.source}: no struct {struct_name}")
        t = self._resolved(type_id)
        bits = 0
        for part in path.split("."):
            found = None if t is None else self._find(t, part)
            if found is None:
                raise BtfError(f"{self.source}: struct {struct_name} has no field {path}")
            bits += found[0]
            t = self._resolved(found[1])
        if bits % 8:
            raise BtfError(f"{self.source}: {struct_name}.{path} is a bit field")
        return bits // 8


def read_kernel_types(path: Path = VMLINUX) -> KernelTypes:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise BtfError(f"{path}: {exc.strerror or exc}") from None
    return KernelTypes(blob, str(path))
