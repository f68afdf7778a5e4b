"""Field offsets of kernel structures from BTF: read from the running
kernel's own type information (the file is world-readable, no root), and
refused with a clear reason when the blob is not BTF, is cut short, or
lacks the field."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from sauron.bpf.btf import BtfError, KernelTypes, read_kernel_types

HEADER = struct.Struct("<HBBIIIII")


def blob(types: bytes, strings: bytes) -> bytes:
    return (
        HEADER.pack(0xEB9F, 1, 0, HEADER.size, 0, len(types), len(types), len(strings))
        + types
        + strings
    )


def btf_type(name_off: int, kind: int, vlen: int, size_or_type: int, kind_flag: int = 0) -> bytes:
    return struct.pack("<III", name_off, (kind_flag << 31) | (kind << 24) | vlen, size_or_type)


# strings: 0 "", 1 "int", 5 "outer", 11 "a", 13 "b", 15 "inner", 21 "c"
STRINGS = b"\0int\0outer\0a\0b\0inner\0c\0"


def sample() -> KernelTypes:
    """struct inner { int c; }; struct outer { int a; union { int b; struct inner; }; }
    with the anonymous union at byte 8 and the struct's member at bit 64."""
    int_t = btf_type(1, 1, 0, 4) + struct.pack("<I", 32)  # id 1
    inner = btf_type(15, 4, 1, 4) + struct.pack("<III", 21, 1, 0)  # id 2
    union = btf_type(0, 5, 2, 4) + struct.pack("<III", 13, 1, 0) + struct.pack("<III", 0, 2, 0)
    outer = btf_type(5, 4, 2, 12) + struct.pack("<III", 11, 1, 0) + struct.pack("<III", 0, 3, 64)
    return KernelTypes(blob(int_t + inner + union + outer, STRINGS), "sample")


def test_offsets_are_found_through_anonymous_members() -> None:
    types = sample()
    assert types.offset("outer", "a") == 0
    assert types.offset("outer", "b") == 8  # inside the anonymous union
    assert types.offset("outer", "c") == 8  # inside a struct inside it
    assert types.offset("inner", "c") == 0


def test_missing_structs_and_fields_are_named() -> None:
    types = sample()
    with pytest.raises(BtfError, match="no struct missing"):
        types.offset("missing", "a")
    with pytest.raises(BtfError, match=r"struct outer has no field a\.z"):
        types.offset("outer", "a.z")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x9f\xeb", "shorter than a BTF header"),
        (HEADER.pack(0x1234, 1, 0, HEADER.size, 0, 0, 0, 0), "not BTF"),
        (blob(btf_type(1, 4, 3, 8), b"\0s\0")[:-3], "truncated"),
        (blob(btf_type(1, 4, 3, 8), b"\0s\0"), "cut short"),
    ],
)
def test_damaged_blobs_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(BtfError, match=reason):
        KernelTypes(data, "damaged")


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BtfError, match="absent"):
        read_kernel_types(tmp_path / "absent")


def test_the_running_kernels_fields_the_energy_probe_reads() -> None:
    from sauron.bpf.receive_offsets import RECEIVE_FIELDS

    types = read_kernel_types()
    offsets = {name: types.offset(s, path) for name, (s, path) in RECEIVE_FIELDS.items()}
    # the net_device pointer leads an sk_buff, after next and prev
    assert offsets["skb_dev"] == 16
    assert all(0 <= o < 4096 for o in offsets.values()), offsets
