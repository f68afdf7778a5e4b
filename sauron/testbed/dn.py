"""Data-network servers: a UDP echo server, a TCP sink that reports how much
it received, and a TCP source that streams until the client leaves. Run inside the DN namespace: python -m sauron.testbed.dn"""

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
    tcp_sent: dict[str, int] = defaultdict(int)
    block = bytes(65536)

    async def source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Bulk download: streams until the client goes away."""
        peer = writer.get_extra_info("peername")[0]
        try:
            while not reader.at_eof():
                writer.write(block)
                await writer.drain()
                tcp_sent[peer] += len(block)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    source_server = await asyncio.start_server(source, args.addr, args.tcp_source_port)

    def stop() -> None:
        transport.close()
        server.close()
        source_server.close()
        Path(args.truth).write_text(
            json.dumps(
                {
                    "node": "dn",
                    "udp": {k: dict(v) for k, v in echo.per_source.items()},
                    "tcp_received": dict(tcp_received),
                    "tcp_sent": dict(tcp_sent),
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
    parser.add_argument("--tcp-port", type=int, default=9001, help="TCP sink (uploads)")
    parser.add_argument("--tcp-source-port", type=int, default=9002, help="TCP source (downloads)")
    parser.add_argument("--truth", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
