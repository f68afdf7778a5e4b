"""Data-network servers: a UDP echo server and a TCP sink that reports how
much it received. Run inside the DN namespace: python -m sauron.testbed.dn"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from pathlib import Path

from sauron.testbed.node import serve_until_terminated


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.per_source: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        entry = self.per_source[addr[0]]
        entry["received"] += 1
        assert self.transport is not None
        self.transport.sendto(data, addr)
        entry["echoed"] += 1
        entry["echoed_ip_bytes"] += len(data) + 28


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    transport, echo = await loop.create_datagram_endpoint(
        UdpEcho, local_addr=(args.addr, args.udp_port)
    )
    tcp_received: dict[str, int] = defaultdict(int)

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        while chunk := await reader.read(65536):
            tcp_received[peer] += len(chunk)
        writer.write(f"{tcp_received[peer]}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(sink, args.addr, args.tcp_port)

    def stop() -> None:
        transport.close()
        server.close()
        Path(args.truth).write_text(
            json.dumps(
                {
                    "node": "dn",
                    "udp": {k: dict(v) for k, v in echo.per_source.items()},
                    "tcp_received": dict(tcp_received),
                },
                indent=2,
                sort_keys=True,
            )
        )

    await serve_until_terminated(stop)


def main() -> None:
    parser = argparse.ArgumentParser(description="data-network servers for the Sauron testbed")
    parser.add_argument("--addr", default="0.0.0.0")
    parser.add_argument("--udp-port", type=int, default=9000)
    parser.add_argument("--tcp-port", type=int, default=9001)
    parser.add_argument("--truth", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
