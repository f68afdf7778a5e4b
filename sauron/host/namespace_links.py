"""The links of one network namespace with their kind and addresses, read
once through netlink: which link carries an address, whether a device is
a TUN."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pyroute2 import IPRoute

from sauron.host.netns import inside


@dataclass
class Link:
    name: str
    #: veth, tun, gtp, ... (None: a physical NIC or the loopback)
    kind: str | None
    #: ARPHRD_* (772: loopback, 65534: no link-layer header)
    hw_type: int
    up: bool
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = field(default_factory=list)

    def carries(self, address: str) -> bool:
        try:
            wanted = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(a.ip == wanted for a in self.addresses)


def links_in(ns: str | None) -> dict[str, Link]:
    """The namespace's links by name (`ns` as sauron.host.netns.inside
    takes it: a name, a namespace file, None for ours)."""
    with inside(ns):
        ipr = IPRoute()
    with ipr:
        links: dict[int, Link] = {}
        for msg in ipr.get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            links[msg["index"]] = Link(
                str(msg.get_attr("IFLA_IFNAME")),
                kind,
                int(msg["ifi_type"]),
                bool(msg["flags"] & 1),
            )
        for msg in ipr.get_addr():
            link = links.get(msg["index"])
            if link is not None:
                # IFA_LOCAL is the link's own on a point-to-point link
                own = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
                link.addresses.append(ipaddress.ip_interface(f"{own}/{msg['prefixlen']}"))
    return {link.name: link for link in links.values()}


def carrier_of(links: dict[str, Link], address: str) -> Link | None:
    """The link holding the address (an address of 127/8 not held by any
    link is the loopback's: the kernel answers the whole prefix there)."""
    for link in links.values():
        if link.carries(address):
            return link
    try:
        if ipaddress.ip_address(address).is_loopback and "lo" in links:
            return links["lo"]
    except ValueError:
        pass
    return None
