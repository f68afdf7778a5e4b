"""The `sauron` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sauron import __version__
from sauron.logs import setup_logging

POINT_CHOICES = {"n3-ingress": 0, "n3-egress": 1, "n6-ingress": 2, "n6-egress": 3}
DIRECTION_CHOICES = {"auto": 3, "point": 0, "uplink": 1, "downlink": 2}


def _cmd_doctor(args: argparse.Namespace) -> int:
    from sauron.doctor import format_checks, report, run_checks

    checks = run_checks()
    result = report(checks)
    print(json.dumps(result, indent=2) if args.json else format_checks(checks))
    return 0 if result["ok"] else 1


def _cmd_replay(args: argparse.Namespace) -> int:
    from sauron.capture import CaptureError
    from sauron.catalog import CatalogError, load_catalog
    from sauron.replay import ReplayOptions, format_report, replay_capture

    try:
        catalog = load_catalog(args.catalog)
        options = ReplayOptions(
            point=POINT_CHOICES[args.point], direction_mode=DIRECTION_CHOICES[args.direction]
        )
        report = replay_capture(args.capture, catalog, options=options)
    except (CatalogError, CaptureError) as exc:
        print(f"sauron replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _cmd_catalog(args: argparse.Namespace) -> int:
    from sauron.catalog import CatalogError, catalog_json_schema, load_catalog

    if args.action == "schema":
        print(json.dumps(catalog_json_schema(), indent=2))
        return 0
    try:
        catalog = load_catalog(args.file)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 2
    for warning in catalog.warnings:
        print(f"{catalog.source}: warning: {warning}", file=sys.stderr)
    for s in catalog.slices:
        print(
            f"{s.id:>3} {s.name:<12} S-NSSAI {s.spec.snssai!s:<10} UE subnets {len(s.spec.ue_subnets)}, "
            f"TEIDs {len(s.spec.teids)}, TEID ranges {len(s.spec.teid_ranges)}, QFIs {len(s.spec.qfis)}"
        )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from sauron.catalog import CatalogError, load_catalog
    from sauron.demo import run_demo

    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 2
    result = run_demo(args.duration, catalog, host=args.host, port=args.port)
    print("G-PDUs counted per slice:", json.dumps(result["slices"]))
    print(f"ground truth and node logs: {result['workdir']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sauron", description="Per-slice telemetry for 5G core user planes"
    )
    parser.add_argument("--version", action="version", version=f"sauron {__version__}")
    parser.add_argument("--log-level", default=None, help="debug, info, warning (default), error")
    sub = parser.add_subparsers(dest="command", required=True)

    doctor = sub.add_parser("doctor", help="check what this host offers the agent")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=_cmd_doctor)

    replay = sub.add_parser("replay", help="run a capture through the real programs")
    replay.add_argument("capture", type=Path, help="pcap or pcapng file")
    replay.add_argument(
        "--catalog", type=Path, default=None, help="slice catalog (default: slices/default.yaml)"
    )
    replay.add_argument("--point", choices=sorted(POINT_CHOICES), default="n3-ingress")
    replay.add_argument(
        "--direction",
        choices=sorted(DIRECTION_CHOICES),
        default="auto",
        help="how each frame's direction is decided (default: auto)",
    )
    replay.add_argument("--json", action="store_true", help="one JSON object")
    replay.set_defaults(func=_cmd_replay)

    catalog = sub.add_parser("catalog", help="check a slice catalog or print its schema")
    catalog.add_argument("action", choices=["check", "schema"])
    catalog.add_argument("file", nargs="?", type=Path, default=None)
    catalog.set_defaults(func=_cmd_catalog)

    demo = sub.add_parser("demo", help="the agent on a UPF in namespaces, three slices of traffic")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    demo.add_argument("--catalog", type=Path, default=None)
    demo.add_argument(
        "--host", default="127.0.0.1", help="where the API listens (default 127.0.0.1)"
    )
    demo.add_argument("--port", type=int, default=8080, help="API port (default 8080)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    return int(args.func(args))
