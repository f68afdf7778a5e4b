"""The C's lint: every object the project compiles builds with the
compiler's warnings as errors (-Wall -Werror), as clang-format in `make lint`
holds its layout. clang-tidy does not fit here: bcc rewrites its map macros
before clang sees the code, so only bcc's own compiler reads the C as the
kernel gets it."""

from __future__ import annotations

import pytest

from sauron.bpf.loader import BpfObject, data_path_sources, record_cflags

pytestmark = [pytest.mark.kernel]

STRICT = ("-Wall", "-Werror")

OBJECTS = {
    "data path": (data_path_sources(), record_cflags(False)),
    "data path, recording": (data_path_sources(), record_cflags(True)),
    "energy probe": (["energy.c"], ()),
    "N4 filter": (["pfcp_filter.c"], ()),
    "frame counter": (["frame_counter.c"], ()),
    "histogram probe": (["histogram_probe.c"], ()),
    "point table": (["point_table.c"], ()),
    "empty XDP": (["empty_xdp.c"], ()),
}


@pytest.mark.parametrize("name", OBJECTS)
def test_compiles_without_a_warning(name: str) -> None:
    sources, cflags = OBJECTS[name]
    with BpfObject(sources, (*cflags, *STRICT)):
        pass
