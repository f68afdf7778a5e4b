"""The names of pinned links: what a later process reads back from them
(bpffs refuses a dot in a name). No root, no kernel."""

from __future__ import annotations

import pytest

from sauron.bpf.links import parse_pin_name, pin_name


@pytest.mark.parametrize(
    ("ifname", "hook"),
    [("n3", "tcx-ingress"), ("eth0.100", "xdp"), ("a@b-c_d", "tcx-egress")],
)
def test_a_pin_name_reads_back(ifname: str, hook: str) -> None:
    name = pin_name(ifname, 4026532368, hook)
    assert "." not in name and "/" not in name
    assert parse_pin_name(name) == (ifname, 4026532368, hook)


@pytest.mark.parametrize(
    "name", ["maps.debug", "n3", "n3@x:xdp", "n3@12:tc", "@12:xdp", "n3@12", "n3@12:xdp:x"]
)
def test_other_files_are_no_pins_of_sauron(name: str) -> None:
    assert parse_pin_name(name) is None
