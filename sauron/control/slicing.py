"""Which catalog slice a learned PDU session belongs to.

In order: its S-NSSAI (exact; then a catalog slice with the same SST and
no SD, which stands for every SD of that SST), its DNN, its PFCP Network
Instance, then the catalog UE subnet its address falls in. The rule that
decided is kept, so an operator can see why."""

from __future__ import annotations

import ipaddress

from sauron.catalog import Catalog, Slice
from sauron.control.record import NO_SD, ControlSession


def resolve(catalog: Catalog, session: ControlSession) -> tuple[Slice | None, str | None]:
    if session.snssai is not None:
        sst, sd = session.snssai
        sd = None if sd == NO_SD else sd
        for s in catalog.slices:
            if s.spec.snssai.sst == sst and s.spec.snssai.sd == sd:
                return s, "snssai"
        for s in catalog.slices:
            if s.spec.snssai.sst == sst and s.spec.snssai.sd is None:
                return s, "sst"
    if session.dnn:
        for s in catalog.slices:
            if session.dnn in s.spec.dnns:
                return s, "dnn"
    for name in session.network_instances:
        for s in catalog.slices:
            if name in s.spec.network_instances or name in s.spec.dnns:
                return s, "network_instance"
    for network in session.ue_networks:
        for s in catalog.slices:
            if any(_inside(network, subnet) for subnet in s.spec.ue_subnets):
                return s, "ue_subnet"
    return None, None


def _inside(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> bool:
    return network.version == subnet.version and network.subnet_of(subnet)  # type: ignore[arg-type]
