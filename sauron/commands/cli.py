"""The `sauron` command."""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from sauron import __version__
from sauron.abi import points
from sauron.host.logs import setup_logging
from sauron.host.nearest_word import nearest
from sauron.security.thresholds import SCAN_THRESHOLD, SPOOF_THRESHOLD

if TYPE_CHECKING:
    from pydantic import BaseModel

    from sauron.commands.client import SauronClient

Model = TypeVar("Model", bound="BaseModel")

#: --point: "n3-ingress", ... (sauron_shared.h's point table)
POINT_CHOICES = {p.option: p.id for p in points.POINTS}
DIRECTION_CHOICES = {"auto": 3, "point": 0, "uplink": 1, "downlink": 2}


def _cmd_doctor(args: argparse.Namespace) -> int:
    from sauron.commands.doctor import format_checks, report, run_checks

    if args.influx:
        from sauron.agent.config import ConfigError, load_config
        from sauron.export.influx.checks import influx_checks
        from sauron.export.influx.settings import (
            InfluxConfig,
            InfluxSettingsError,
            with_environment,
        )

        try:
            influx = load_config(args.config).influx if args.config else InfluxConfig()
            checks = influx_checks(with_environment(influx))
        except (ConfigError, InfluxSettingsError) as exc:
            print(exc, file=sys.stderr)
            return 2
    else:
        checks = run_checks()
    result = report(checks)
    print(json.dumps(result, indent=2) if args.json else format_checks(checks))
    return 0 if result["ok"] else 1


def _cmd_replay(args: argparse.Namespace) -> int:
    from sauron.bpf.loader import NoSuchProgram
    from sauron.catalog import CatalogError, load_catalog
    from sauron.commands.capture import CaptureError
    from sauron.commands.replay import ReplayOptions, format_report, replay_capture

    progress = _ReplayProgress(args.capture)
    try:
        catalog = load_catalog(args.catalog)
        options = ReplayOptions(
            point=POINT_CHOICES[args.point],
            hook=args.hook,
            direction_mode=DIRECTION_CHOICES[args.direction],
            progress=progress,
            security=not args.no_security,
            peers=tuple(args.peer),
            protected=tuple(args.protected),
            scan_threshold=args.scan_threshold,
            spoof_threshold=args.spoof_threshold,
        )
        try:
            report = replay_capture(args.capture, catalog, options=options)
        finally:
            progress.finish()
    except (CatalogError, CaptureError, NoSuchProgram) as exc:
        print(f"sauron replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


class _ReplayProgress:
    """Progress on stderr, once a second after the first: on a terminal one
    line rewritten in place, else a line each time (stdout stays the
    report's)."""

    def __init__(self, capture: Path) -> None:
        import time

        self.capture, self.clock = capture, time.monotonic
        self.started = self.said = self.clock()
        self.on_terminal = sys.stderr.isatty()
        self.shown = False

    def __call__(self, frames: int) -> None:
        now = self.clock()
        if now - self.said < 1.0:
            return
        self.said, self.shown = now, True
        text = f"{self.capture}: {frames:,} frames run in {now - self.started:.0f} s"
        if self.on_terminal:
            print("\r" + text, end="", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.shown and self.on_terminal:
            print(file=sys.stderr)


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
    from sauron.agent.config import ConfigError
    from sauron.agent.run import open_publisher
    from sauron.catalog import CatalogError, load_catalog
    from sauron.commands.demo import run_demo
    from sauron.export.influx.settings import DEFAULT_SPOOL, InfluxConfig

    try:
        catalog = load_catalog(args.catalog)
        # the demo publishes when SAURON_INFLUX_URL says where, node "demo"
        influx = InfluxConfig(spool_dir=DEFAULT_SPOOL / "demo")
        publisher = open_publisher(influx, "demo", Path("(environment)"))
    except (CatalogError, ConfigError) as exc:
        print(exc, file=sys.stderr)
        return 2
    if publisher is not None:
        print(f"publishing to {publisher.config.shown_url}, bucket {publisher.config.bucket}")
    result = run_demo(
        args.duration,
        catalog,
        workdir=args.workdir,
        host=args.host,
        port=args.port,
        publisher=publisher,
    )
    print(f"summary, ground truth and node logs: {result['workdir']}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from sauron.agent.config import ConfigError, load_config
    from sauron.agent.datapath import DataPathBusy
    from sauron.agent.run import describe, run_agent
    from sauron.bpf.build import BuildFailed
    from sauron.catalog import CatalogError

    try:
        config = load_config(args.config)
        print(describe(config, args.config), flush=True)
        if args.keep_datapath:
            keep = config.datapath.model_copy(update={"keep_on_stop": True})
            config = config.model_copy(update={"datapath": keep})
        run_agent(
            config,
            ready=lambda url: print(f"serving {url}/api/v1/slices", flush=True),
            config_path=args.config,
        )
    except (ConfigError, CatalogError, DataPathBusy, BuildFailed) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _cmd_detach(args: argparse.Namespace) -> int:
    from sauron.agent.config import ConfigError, DataPathConfig, load_config
    from sauron.bpf.pinned import PIN_ROOT, pin_folder
    from sauron.commands.detach import detach, pinned_data_paths

    state_dir = DataPathConfig().state_dir
    if args.all:
        folders = [found.folder for found in pinned_data_paths(state_dir)]
    else:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        state_dir = config.datapath.state_dir
        folders = [pin_folder(config.node, args.config)]
    done = detach(folders, state_dir)
    for found in done.removed:
        print(f"detached and removed {found.describe()}")
    for found in done.running:
        print(f"left alone: {found.describe()} (stop that agent first)", file=sys.stderr)
    if not done.removed and not done.running:
        where = "" if args.all else f" for {args.config}"
        print(f"no data path pinned{where} under {PIN_ROOT}")
    return 1 if done.running else 0


def _cmd_config(args: argparse.Namespace) -> int:
    if args.action == "init":
        return _config_init(args)
    if args.action == "check":
        return _config_check(args)
    from sauron.commands.config_reference import reference, with_reference

    if args.readme is None:
        print(reference(), end="")
        return 0
    try:
        args.readme.write_text(with_reference(args.readme.read_text()))
    except (OSError, ValueError) as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2
    return 0


def _config_init(args: argparse.Namespace) -> int:
    from sauron.commands.config_init import NOT_WRITTEN, init_detected

    if not args.detect:
        print(
            "sauron config init: only --detect is offered: it writes the configuration "
            "of the Open5GS UPF running here (agent.example.yaml is the hand-written start)",
            file=sys.stderr,
        )
        return NOT_WRITTEN
    return init_detected(args.output, args.catalog_output, args.port, args.force)


def _config_check(args: argparse.Namespace) -> int:
    from sauron.commands.config_check import check_config

    if args.file is None:
        print(
            "sauron config check: name the configuration: sauron config check FILE", file=sys.stderr
        )
        return 2
    report = check_config(args.file)
    for line in report.passed:
        print(f"ok: {line}")
    for line in report.problems:
        print(line, file=sys.stderr)
    if report.ok:
        print(f"{args.file}: ready for this host: sauron run --config {args.file}")
        return 0
    print(
        f"{args.file}: {len(report.problems)} problem(s) to fix before sauron run", file=sys.stderr
    )
    return 1


def _token(args: argparse.Namespace) -> str | None:
    import os

    from sauron.agent.config import read_token

    if args.token_file is not None:
        # the operator's copy: the agent's ownership rule is the agent's
        return read_token(args.token_file, agents_own=False)
    return os.environ.get("SAURON_TOKEN") or None


def _query(args: argparse.Namespace, work: Callable[[SauronClient], Awaitable[str]]) -> int:
    """Runs one query against the agent; problems go to stderr, exit 1."""
    import asyncio

    from sauron.agent.config import ConfigError
    from sauron.commands.client import ApiError, SauronClient

    async def go() -> str:
        async with SauronClient(args.url, token=_token(args)) as api:
            return await work(api)

    try:
        said = asyncio.run(go())
        if said:  # top prints as it goes
            print(said)
    except ApiError as exc:
        if getattr(args, "json", False):
            print(json.dumps(exc.document(), indent=2))
        else:
            print(f"sauron {args.command}: {exc}", file=sys.stderr)
            if exc.hint:
                print(f"  {exc.hint}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"sauron {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _show(
    args: argparse.Namespace,
    fetch: Callable[[SauronClient], Awaitable[Model]],
    view: Callable[[Model], str],
) -> int:
    """One document from the agent, as JSON (--json) or as its text view."""

    async def work(api: SauronClient) -> str:
        doc = await fetch(api)
        return doc.model_dump_json(indent=2) if args.json else view(doc)

    return _query(args, work)


def _cmd_slices(args: argparse.Namespace) -> int:
    from sauron.commands.views import slices_table

    return _show(args, lambda api: api.slices(), slices_table)


def _cmd_kpis(args: argparse.Namespace) -> int:
    from sauron.commands.views import kpis_table

    async def work(api: SauronClient) -> str:
        if args.slice is not None:
            one = await api.slice(args.slice)
            docs = [one]
        else:
            docs = list((await api.slices()).slices)
        if args.json:
            return json.dumps({d.name: d.kpis and d.kpis.model_dump() for d in docs}, indent=2)
        rows = [(d.name, d.kpis) for d in docs if d.kpis is not None]
        return kpis_table(rows) if rows else "no interval measured yet"

    return _query(args, work)


def _cmd_sla(args: argparse.Namespace) -> int:
    from sauron.commands.views import sla_report

    return _show(args, lambda api: api.sla(), sla_report)


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from sauron.commands.views import diagnosis_report

    return _show(args, lambda api: api.diagnosis(args.slice, args.limit), diagnosis_report)


def _cmd_security(args: argparse.Namespace) -> int:
    import time

    from sauron.commands.views import security_report

    since = args.since if args.last is None else time.time() - args.last
    if args.slice is not None:
        return _show(
            args, lambda api: api.slice_security(args.slice, since, args.until), security_report
        )
    return _show(args, lambda api: api.security(since, args.until), security_report)


def _cmd_sessions(args: argparse.Namespace) -> int:
    from sauron.commands.views import pdu_sessions_table

    return _show(
        args,
        lambda api: api.pdu_sessions(args.state, args.slice, args.ue, args.limit),
        pdu_sessions_table,
    )


def _cmd_energy(args: argparse.Namespace) -> int:
    import time

    from sauron.commands.views import energy_table

    since = None if args.last is None else time.time() - args.last
    return _show(args, lambda api: api.energy(since=since), energy_table)


def _cmd_pm(args: argparse.Namespace) -> int:
    import time

    from sauron.commands.views import pm_table

    since = None if args.last is None else time.time() - args.last
    return _show(args, lambda api: api.pm(since=since), pm_table)


def _cmd_top(args: argparse.Namespace) -> int:
    from sauron.commands.views import top_screen

    # the screen is cleared on a terminal only: piped, frames follow each other
    clear = "" if args.no_clear or args.json or not sys.stdout.isatty() else "\x1b[H\x1b[2J"

    async def work(api: SauronClient) -> str:
        shown = 0
        async for snap in api.stream(reconnect=True):  # an agent restarting: it goes on
            frame = snap.model_dump_json() if args.json else clear + top_screen(snap, args.url)
            print(frame, flush=True)
            shown += 1
            if args.count and shown >= args.count:
                break
        return ""

    try:
        return _query(args, work)
    except KeyboardInterrupt:
        return 0


def _client_args(p: argparse.ArgumentParser) -> None:
    import os

    p.add_argument(
        "--url",
        default=os.environ.get("SAURON_URL", "http://127.0.0.1:8080"),
        help="the agent's API, or unix:PATH for its UNIX socket "
        "(default $SAURON_URL or http://127.0.0.1:8080)",
    )
    p.add_argument(
        "--token-file", type=Path, default=None, help="bearer token file (default $SAURON_TOKEN)"
    )


class _Parser(argparse.ArgumentParser):
    """argparse, offering the nearest valid word for a mistyped command or
    choice (its sub-commands' parsers are of the same class)."""

    def error(self, message: str) -> NoReturn:
        wrong = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if wrong:
            near = nearest(wrong.group(1), re.findall(r"'([^']*)'", wrong.group(2)))
            if near:
                message += f"; did you mean {near!r}?"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sauron", description="Per-slice telemetry for 5G core user planes")
    parser.add_argument("--version", action="version", version=f"sauron {__version__}")
    parser.add_argument("--log-level", default=None, help="debug, info, warning (default), error")
    sub = parser.add_subparsers(dest="command", required=True)

    doctor = sub.add_parser("doctor", help="check what this host offers the agent")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument(
        "--influx",
        action="store_true",
        help="check the InfluxDB publisher instead: server, token, org and bucket, spool",
    )
    doctor.add_argument(
        "--config",
        type=Path,
        default=None,
        help="agent configuration whose influx section to check",
    )
    doctor.set_defaults(func=_cmd_doctor)

    replay = sub.add_parser("replay", help="run a capture through the real programs")
    replay.add_argument("capture", type=Path, help="pcap or pcapng file")
    replay.add_argument(
        "--catalog", type=Path, default=None, help="slice catalog (default: slices/default.yaml)"
    )
    replay.add_argument("--point", choices=sorted(POINT_CHOICES), default="n3-ingress")
    replay.add_argument(
        "--hook",
        choices=["xdp", "tc"],
        default=None,
        help="the point's program for this hook (default: xdp where the point has it)",
    )
    replay.add_argument(
        "--direction",
        choices=sorted(DIRECTION_CHOICES),
        default="auto",
        help="how each frame's direction is decided: auto (the capture's PFCP tunnel ends, "
        "else the PDU Session Container, else the UPF and gNB addresses the containers "
        "showed, else the kernel's UE subnet rule), or fixed: point (the attach point's), "
        "uplink, downlink (default: auto)",
    )
    replay.add_argument("--json", action="store_true", help="one JSON object")
    replay.add_argument(
        "--no-security", action="store_true", help="without the security checks and detections"
    )
    replay.add_argument(
        "--peer",
        action="append",
        type=ipaddress.ip_address,
        default=[],
        metavar="ADDRESS",
        help="a known gNB or peer UPF (repeat it); with none, and no far tunnel end in the "
        "capture's PFCP, no outer source counts as unknown",
    )
    replay.add_argument(
        "--protected",
        action="append",
        type=ipaddress.ip_network,
        default=[],
        metavar="PREFIX",
        help="a prefix of the core's own networks (repeat it): uplink traffic into it counts",
    )
    replay.add_argument(
        "--scan-threshold",
        type=int,
        default=SCAN_THRESHOLD,
        help="distinct unknown TEIDs one source probes within a second that make a TEID scan "
        "(default: %(default)s)",
    )
    replay.add_argument(
        "--spoof-threshold",
        type=int,
        default=SPOOF_THRESHOLD,
        help="sources not its own one session sends from within a second that make a spoofing "
        "UE (default: %(default)s)",
    )
    replay.set_defaults(func=_cmd_replay)

    config = sub.add_parser(
        "config",
        help="the agent configuration: its reference, written from this host (init --detect), "
        "checked against this host (check FILE)",
    )
    config.add_argument("action", choices=["reference", "init", "check"])
    config.add_argument("file", nargs="?", type=Path, default=None, help="check: the configuration")
    config.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="reference: write it into this Markdown file, between its markers, instead of printing it",
    )
    config.add_argument(
        "--detect",
        action="store_true",
        help="init: find the Open5GS UPF (and SMF) running here: namespace, links, UE pools, S-NSSAIs",
    )
    config.add_argument(
        "--output",
        type=Path,
        default=Path("agent.yaml"),
        help="init: the agent configuration written (default agent.yaml)",
    )
    config.add_argument(
        "--catalog-output",
        type=Path,
        default=Path("slices.yaml"),
        help="init: the slice catalog written (default slices.yaml)",
    )
    config.add_argument(
        "--port", type=int, default=8080, help="init: the API's port on loopback (default 8080)"
    )
    config.add_argument("--force", action="store_true", help="init: replace files that exist")
    config.set_defaults(func=_cmd_config)

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
    demo.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the summary (demo.json), ground truth and node logs go (default: a new temporary folder)",
    )
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="the agent: attach, measure, serve (stops on SIGTERM/SIGINT)")
    run.add_argument("--config", type=Path, required=True, help="agent configuration (YAML)")
    run.add_argument(
        "--keep-datapath",
        action="store_true",
        help="on SIGTERM leave the programs attached and counting for the next start "
        "(a restart or an upgrade adopts them); default: detach and remove them",
    )
    run.set_defaults(func=_cmd_run)

    detach = sub.add_parser(
        "detach", help="remove a data path left counting by a stopped or killed agent"
    )
    which = detach.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", type=Path, help="the data path of this agent configuration")
    which.add_argument("--all", action="store_true", help="every data path no agent runs")
    detach.set_defaults(func=_cmd_detach)

    slices = sub.add_parser("slices", help="the agent's slices and their SLA status")
    _client_args(slices)
    slices.add_argument("--json", action="store_true")
    slices.set_defaults(func=_cmd_slices)

    kpis = sub.add_parser("kpis", help="latest KPIs of one slice or all")
    kpis.add_argument("slice", nargs="?", default=None)
    _client_args(kpis)
    kpis.add_argument("--json", action="store_true")
    kpis.set_defaults(func=_cmd_kpis)

    sla = sub.add_parser("sla", help="SLA status and violation events")
    _client_args(sla)
    sla.add_argument("--json", action="store_true")
    sla.set_defaults(func=_cmd_sla)

    diagnose = sub.add_parser(
        "diagnose", help="why a slice is late or lossy: its latest diagnoses and their factors"
    )
    _client_args(diagnose)
    diagnose.add_argument("slice", help="a slice name")
    diagnose.add_argument("--limit", type=int, default=5, help="diagnoses shown (default 5)")
    diagnose.add_argument("--json", action="store_true")
    diagnose.set_defaults(func=_cmd_diagnose)

    security = sub.add_parser(
        "security",
        help="frames that failed each security check per slice, and the TEID scans and "
        "spoofing UEs detected",
    )
    _client_args(security)
    security.add_argument("--slice", default=None, help="one slice (default: every slice)")
    window = security.add_mutually_exclusive_group()
    window.add_argument(
        "--last",
        type=float,
        default=None,
        metavar="SECONDS",
        help="sum the last SECONDS (default: every interval the agent keeps)",
    )
    window.add_argument(
        "--since", type=float, default=None, metavar="UNIX_S", help="from this time (unix seconds)"
    )
    security.add_argument(
        "--until", type=float, default=None, metavar="UNIX_S", help="up to this time (unix seconds)"
    )
    security.add_argument("--json", action="store_true")
    security.set_defaults(func=_cmd_security)

    sessions = sub.add_parser(
        "sessions", help="PDU sessions learned from PFCP or the SMF, with their slice"
    )
    _client_args(sessions)
    sessions.add_argument("--state", choices=("active", "ended", "all"), default="active")
    sessions.add_argument("--slice", default=None, help="one slice (none: sessions of no slice)")
    sessions.add_argument("--ue", default=None, help="one UE address")
    sessions.add_argument("--limit", type=int, default=None)
    sessions.add_argument("--json", action="store_true")
    sessions.set_defaults(func=_cmd_sessions)

    energy = sub.add_parser("energy", help="energy per slice: watts, joules, J/GB, uJ/packet")
    _client_args(energy)
    energy.add_argument(
        "--last", type=float, default=None, help="sum the last SECONDS (default: latest interval)"
    )
    energy.add_argument("--json", action="store_true")
    energy.set_defaults(func=_cmd_energy)

    pm = sub.add_parser(
        "pm", help="3GPP measurements per S-NSSAI: GTP-U packets and octets on N3, EE"
    )
    _client_args(pm)
    pm.add_argument(
        "--last", type=float, default=None, help="sum the last SECONDS (default: latest interval)"
    )
    pm.add_argument("--json", action="store_true")
    pm.set_defaults(func=_cmd_pm)

    top = sub.add_parser("top", help="live view of every slice (Ctrl-C ends)")
    _client_args(top)
    top.add_argument("--count", type=int, default=0, help="stop after this many intervals")
    top.add_argument(
        "--no-clear",
        action="store_true",
        help="append frames, no screen clearing (piped output never clears)",
    )
    top.add_argument(
        "--json", action="store_true", help="one JSON document per interval, one per line"
    )
    top.set_defaults(func=_cmd_top)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    return int(args.func(args))
