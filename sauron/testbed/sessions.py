"""The sessions file both ends of the testbed read: which UE holds which
address, TEIDs and QFI in which slice, and the impairments each slice gets.
It is the testbed's control plane (what an SMF would set up over N4/N2)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from sauron.catalog import Catalog
from sauron.host.yamlfile import FileProblems


class SessionsError(FileProblems):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UeSession(_Strict):
    ue_ip: ipaddress.IPv4Address
    slice: str
    #: F-TEID of the UPF (uplink G-PDUs carry it)
    ul_teid: Annotated[int, Field(ge=1, le=0xFFFFFFFF)]
    #: F-TEID of the gNB (downlink G-PDUs carry it)
    dl_teid: Annotated[int, Field(ge=1, le=0xFFFFFFFF)]
    qfi: Annotated[int, Field(ge=0, le=63)] = 9
    #: the UPF's downlink G-PDUs carry a PDU Session Container with the QFI
    #: (Open5GS sends none when the session has no QER)
    downlink_container: bool = True
    sequence_numbers: bool = False
    #: the N3 address of the UPF serving the session (None: the only UPF)
    upf_n3: ipaddress.IPv4Address | None = None


class Impairment(_Strict):
    """Applied by the reference UPF to a slice's packets, both directions."""

    delay_ms: Annotated[float, Field(ge=0)] = 0.0
    jitter_ms: Annotated[float, Field(ge=0)] = 0.0
    loss: Annotated[float, Field(ge=0, le=1)] = 0.0
    rate_mbps: Annotated[float, Field(gt=0)] | None = None


class SessionsFile(_Strict):
    sessions: list[UeSession]
    impairments: dict[str, Impairment] = {}
    #: loss the gNB applies to uplink before N3 (radio side), per slice
    uplink_radio_loss: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}
    #: delay the gNB adds on the radio leg, both directions, per slice
    radio_delay_ms: dict[str, Annotated[float, Field(ge=0)]] = {}
    #: the UPF's N3 socket receive buffer in bytes (SO_RCVBUFFORCE: the
    #: kernel doubles it for its bookkeeping); None: 4 MiB, room for bursts
    n3_receive_buffer: Annotated[int, Field(ge=1)] | None = None
    seed: int = 1

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2))


def load_sessions(path: Path) -> SessionsFile:
    try:
        return SessionsFile.model_validate_json(path.read_text())
    except OSError as exc:
        raise SessionsError(path, [f"cannot read: {exc.strerror}"]) from None
    except ValueError as exc:
        raise SessionsError(path, [str(exc)]) from None


def make_sessions(
    catalog: Catalog,
    ues_per_slice: dict[str, int],
    seq_slices: tuple[str, ...] = (),
    qfi: dict[str, int] | None = None,
) -> list[UeSession]:
    """UEs numbered from the first address of each slice's IPv4 pool, TEIDs
    from the slice's first TEID range (UPF side) and 0x80000000 up (gNB side)."""
    out: list[UeSession] = []
    dl_teid = 0x80000000
    for name, count in ues_per_slice.items():
        spec = catalog.get(name)
        if spec is None:
            raise ValueError(f"no slice {name!r} in the catalog")
        pool = next(n for n in spec.spec.ue_subnets if n.version == 4)
        first_teid = spec.spec.teid_ranges[0].first if spec.spec.teid_ranges else 0x1000 * spec.id
        for i in range(count):
            dl_teid += 1
            out.append(
                UeSession(
                    ue_ip=ipaddress.IPv4Address(pool.network_address + 2 + i),
                    slice=name,
                    ul_teid=first_teid + i,
                    dl_teid=dl_teid,
                    qfi=(qfi or {}).get(name, 9),
                    sequence_numbers=name in seq_slices,
                )
            )
    return out
