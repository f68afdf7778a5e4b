"""What the energy probe's receive hook reads of the running kernel's
structures, found in its BTF by the build (sauron.bpf.build) and written
into the probe's map before it is pinned."""

from __future__ import annotations

from pathlib import Path

from sauron.abi import energy_layout
from sauron.bpf.btf import VMLINUX, BtfError, read_kernel_types

#: the kernel fields the receive hook reads: (struct, field path)
RECEIVE_FIELDS = {
    "skb_dev": ("sk_buff", "dev"),
    "napi_dev": ("napi_struct", "dev"),
    "dev_ifindex": ("net_device", "ifindex"),
    "dev_net": ("net_device", "nd_net.net"),
    "net_inum": ("net", "ns.inum"),
}


def kernel_receive_offsets(btf_path: Path = VMLINUX) -> tuple[energy_layout.ReceiveOffsets, str]:
    """The offsets of the fields the receive hook reads, from the running
    kernel's BTF, with "" (or offsets marked unknown, and why). The build
    reads them, as parsing the BTF costs its reader about 35 MB and half a
    second; pins live no longer than the kernel they were read from."""
    offsets = energy_layout.ReceiveOffsets()
    try:
        types = read_kernel_types(btf_path)
        for name, (struct_name, path) in RECEIVE_FIELDS.items():
            setattr(offsets, name, types.offset(struct_name, path))
    except BtfError as exc:
        return energy_layout.ReceiveOffsets(), str(exc)
    offsets.known = 1
    return offsets, ""
