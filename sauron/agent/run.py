"""`sauron run --config FILE`: the agent of a real deployment. It loads the
programs, classifies by the slice catalog, attaches to the configured
interfaces, opens the energy meter, the control plane and the publisher,
hands them to the agent's runtime (sauron.agent.runtime), starts it, then
serves it; on SIGTERM or SIGINT it stops serving, stops the runtime and
detaches every program it attached, whatever failed."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from sauron.agent.config import (
    AgentConfig,
    ConfigError,
    EnergyConfig,
    InterfaceConfig,
    read_token,
    resolve_namespaces,
)
from sauron.agent.datapath import AgentDataPath, extra_cflags
from sauron.agent.diagnosing import Diagnosing, open_diagnosing
from sauron.agent.interfaces import receiving_links, resolve_links
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.agent.securing import FORMAT as SECURITY_STATE
from sauron.agent.securing import Securing
from sauron.agent.state_file import StateFile
from sauron.bpf.companions import DIAGNOSIS, ENERGY, N4_FILTER, PFCP_FILTER_FUNCTION
from sauron.bpf.loader import DataPathControl
from sauron.bpf.measurements import (
    MeasureSettings,
    TransitExpiry,
    apply_settings,
    settings_for,
)
from sauron.bpf.pinned import PROGRAMS, pin_folder
from sauron.bpf.rules import program_catalog
from sauron.bpf.security import set_checks
from sauron.catalog import Catalog, load_catalog
from sauron.control.plane import ControlPlane
from sauron.diagnosis.cursor import DiagnosisCursor
from sauron.energy.meter import EnergyMeter, EnergyUnavailable, detect_setup
from sauron.energy.probe import EnergyProbe
from sauron.energy.profiles import ProfileError
from sauron.export.delivery.spool import SpoolError
from sauron.export.influx.publisher import Publisher
from sauron.export.influx.settings import (
    InfluxConfig,
    InfluxSettingsError,
    read_influx_token,
    with_environment,
)
from sauron.export.otlp.settings import OtlpConfig, OtlpSettingsError
from sauron.export.otlp.settings import enabled as otlp_enabled
from sauron.export.remote_write.exporter import RemoteWriteExporter
from sauron.export.remote_write.settings import (
    RemoteWriteConfig,
    RemoteWriteSettingsError,
)
from sauron.export.remote_write.settings import read_credentials as read_remote_write_credentials
from sauron.export.remote_write.settings import with_environment as remote_write_environment
from sauron.kpi.history import History
from sauron.kpi.sla import SlaTracker
from sauron.service.app import ServiceOptions, create_app
from sauron.service.serving import service_runner

if TYPE_CHECKING:
    from sauron.export.otlp.exporter import OtlpExporter

log = logging.getLogger(__name__)


def service_options(config: AgentConfig) -> ServiceOptions:
    svc = config.service
    return ServiceOptions(
        token=read_token(svc.token_file) if svc.token_file is not None else None,
        rate_per_s=svc.rate_per_s,
        burst=svc.burst,
    )


async def _serve_until_stopped(
    runtime: AgentRuntime,
    options: ServiceOptions,
    config: AgentConfig,
    ready: Callable[[str], None],
    where: Path,
) -> None:
    """Starts the runtime, then serves it; stops serving, then the runtime."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    path = config.service.socket
    made: int | None = None  # the socket's inode, once this agent made it
    try:
        async with runtime:
            runner = service_runner(create_app(runtime, options))
            await runner.setup()
            try:
                site = web.TCPSite(runner, config.service.host, config.service.port)
                await site.start()
                host, port = runner.addresses[0][:2]
                if path is not None:
                    made = await start_unix_site(runner, path, where)
                ready(f"http://{host}:{port}")
                await stop.wait()
                log.info("stopping", extra={"reason": "signal"})
            finally:
                await runner.cleanup()
    finally:
        if path is not None and made is not None:
            remove_own_socket(path, made)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def claim_socket_path(path: Path) -> None:
    """Makes way for the agent's socket: the path must be free, or a socket
    nobody listens on (left by an agent that was killed), which is removed.
    Anything else is refused: the agent never removes what it did not make,
    nor takes a live socket over."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(found.st_mode):
        raise OSError(errno.EEXIST, "it exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        path.unlink()  # nobody listens: a stale socket
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another process listens on it")


def remove_own_socket(path: Path, inode: int) -> None:
    """Removes the agent's socket at stop, if the path still holds it."""
    with contextlib.suppress(OSError):
        if path.lstat().st_ino == inode:
            path.unlink()


async def start_unix_site(runner: web.AppRunner, path: Path, where: Path) -> int:
    """The API on a UNIX socket only the agent's user (and root) may use:
    created under a umask that leaves others no access, then made 0600.
    Returns the socket's inode (what the agent may remove at stop). A path
    it cannot listen on is a configuration error naming the file and field."""
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        claim_socket_path(path)
        mask = os.umask(0o177)
        try:
            await web.UnixSite(runner, str(path)).start()
        finally:
            os.umask(mask)
        path.chmod(0o600)
        return path.lstat().st_ino
    except OSError as exc:
        raise ConfigError(
            where,
            [f"field service.socket: cannot listen on {path}: {exc.strerror or exc}"],
        ) from None


def open_energy(
    energy: EnergyConfig,
    catalog: Catalog,
    dp: DataPathControl,
    datapath: AgentDataPath,
    config_path: Path | None = None,
    receiving: set[tuple[int, int]] | None = None,
) -> tuple[EnergyMeter | None, str]:
    """The energy estimator over the probe the data path's build pinned, or
    None and why: off in the configuration, or the kernel cannot run it
    (logged; the rest of the agent runs). A configuration it cannot use is
    an error."""
    if not energy.enabled:
        return None, "energy.enabled is false in the agent configuration"
    build = datapath.companion_builds.get(ENERGY.name)
    if build is None:
        reason = datapath.companion_failed.get(ENERGY.name, "the energy probe was not built")
        log.warning("energy estimator off", extra={"reason": reason})
        return None, reason
    where = config_path or Path("(configuration)")
    try:
        setup = detect_setup(energy.profile, energy.profiles_dir)
    except ProfileError as exc:
        raise ConfigError(where, [f"field energy.profile: {exc}"]) from None
    except OSError as exc:
        log.warning("energy estimator off", extra={"reason": str(exc)})
        return None, str(exc)
    try:
        probe = EnergyProbe(build, energy.tick_hz)
    except OSError as exc:
        setup.frequency.close()
        log.warning("energy estimator off", extra={"reason": f"kernel probe: {exc}"})
        return None, f"the kernel probe could not start: {exc}"
    try:
        meter = EnergyMeter(
            catalog,
            probe,
            setup,
            dp.entry_program_fds(),
            energy.watch,
            energy.idle,
            receiving_links=receiving,
        )
    except EnergyUnavailable as exc:
        probe.close()
        setup.frequency.close()
        raise ConfigError(where, [f"field {exc}"]) from None
    return meter, ""


def open_publisher(influx: InfluxConfig, node: str, where: Path) -> Publisher | None:
    """The publisher when a server is configured (file or environment);
    settings it cannot use, or a spool it cannot hold, are errors."""
    try:
        influx = with_environment(influx)
        if not influx.enabled:
            return None
        token = read_influx_token(influx)
        publisher = Publisher(influx, node, token)
    except InfluxSettingsError as exc:
        raise ConfigError(exc.path, exc.problems) from None
    except SpoolError as exc:
        raise ConfigError(where, [f"field influx.spool_dir: {exc}"]) from None
    log.info(
        "publishing",
        extra={
            "url": influx.shown_url,
            "org": influx.org,
            "bucket": influx.bucket,
            "spool": str(influx.spool_dir),
        },
    )
    return publisher


def publish_diagnoses(publisher: Publisher | None, diagnosing: Diagnosing) -> None:
    """The publisher writes each new diagnosis once (`sauron_diagnosis`),
    with the snapshot of the interval it explains."""
    if publisher is not None:
        publisher.diagnoses = DiagnosisCursor(diagnosing.history)


def open_securing(
    config: AgentConfig, dp: DataPathControl, datapath: AgentDataPath, control: ControlPlane
) -> Securing | None:
    """The security checks as configured, going on from the detections of
    the agent before (its state file); None when they are off (and set off
    in the data path, whatever an earlier agent set)."""
    if not config.security.enabled:
        set_checks(dp, False)
        return None
    registry = control.registry
    return Securing(
        config.security,
        dp,
        config.interval_s,
        sessions=lambda: list(registry.sessions.values()),
        version=lambda: registry.version,
        keep=StateFile(datapath.state_dir / "security", SECURITY_STATE),
    )


def measure_settings(catalog: Catalog, interfaces: list[InterfaceConfig]) -> MeasureSettings:
    """Everything the catalog asks, transit stamps only when both sides of
    the UPF are watched: stamped at N3 and never seen at N6, every one
    would expire as loss inside the UPF."""
    settings = settings_for(catalog)
    roles = {i.role for i in interfaces}
    if not (roles & {"n3", "n9"} and "n6" in roles):
        return replace(settings, transit=False)
    return settings


def open_otlp(otlp: OtlpConfig, node: str) -> OtlpExporter | None:
    """The OTLP exporter when an endpoint is configured (file or
    environment); a variable it cannot use is an error naming it. The
    OpenTelemetry SDK is loaded only then."""
    if not otlp_enabled(otlp):
        return None
    from sauron.export.otlp.exporter import OtlpExporter

    try:
        return OtlpExporter(otlp, node)
    except OtlpSettingsError as exc:
        raise ConfigError(exc.path, exc.problems) from None


def open_remote_write(
    settings: RemoteWriteConfig, node: str, where: Path, publisher: Publisher | None
) -> RemoteWriteExporter | None:
    """The remote-write exporter when a receiver is configured (file or
    environment); settings it cannot use, or a spool it cannot hold (the
    publisher's included), are errors."""
    try:
        settings = remote_write_environment(settings)
        if not settings.enabled:
            return None
        if publisher is not None and publisher.config.spool_dir == settings.spool_dir:
            raise ConfigError(
                where,
                ["field remote_write.spool_dir: the InfluxDB publisher's spool; give each its own"],
            )
        token, password = read_remote_write_credentials(settings)
        exporter = RemoteWriteExporter(settings, node, token, password)
    except RemoteWriteSettingsError as exc:
        raise ConfigError(exc.path, exc.problems) from None
    except SpoolError as exc:
        raise ConfigError(where, [f"field remote_write.spool_dir: {exc}"]) from None
    log.info(
        "remote writing",
        extra={"url": settings.shown_url, "spool": str(settings.spool_dir)},
    )
    return exporter


def resume_control_plane(
    config: AgentConfig,
    catalog: Catalog,
    dp: DataPathControl,
    datapath: AgentDataPath,
    last_reading_at: float | None,
    where: Path,
) -> ControlPlane:
    """The session table, with the sessions the last agent knew (their rules
    are in the data path: the catalog's rewrite keeps them); its sources
    are not open yet. PFCP to watch without the N4 filter built is said
    before any rule is written."""
    pinned = datapath.companion_builds.get(N4_FILTER.name)
    if config.control_plane.pfcp and pinned is None:
        reason = datapath.companion_failed.get(
            N4_FILTER.name, "the N4 watch's filter was not built"
        )
        raise ConfigError(where, [f"field control_plane.pfcp: cannot watch N4: {reason}"])
    control = ControlPlane(
        catalog,
        dp,
        config.control_plane,
        filter_program=None if pinned is None else pinned / PROGRAMS / PFCP_FILTER_FUNCTION,
        filter_missing=datapath.companion_failed.get(
            N4_FILTER.name, "the N4 watch's filter was not built"
        ),
        keep=datapath.sessions.save,
        keep_every_s=config.interval_s,
    )
    saved = datapath.sessions.load()
    if saved is not None:
        since = last_reading_at if last_reading_at is not None else saved.at
        control.resume(saved, since, time.time())
    return control


def open_control_plane(control: ControlPlane, config: AgentConfig, where: Path) -> None:
    """The session table's sources; an N4 interface that cannot be watched
    is a configuration error."""
    try:
        control.open()
    except OSError as exc:
        index = len(control.watches)  # the watches opened before this one
        control.close()
        watch = config.control_plane.pfcp[index]
        raise ConfigError(
            where,
            [
                f"field control_plane.pfcp.{index}.name: cannot watch {watch.name!r}"
                f"{' in ' + watch.netns if watch.netns else ''}: {exc.strerror or exc}"
            ],
        ) from None


def companions_for(config: AgentConfig) -> tuple[str, ...]:
    """The objects built beside the data path that this configuration uses."""
    wanted = [ENERGY.name] if config.energy.enabled else []
    if config.diagnosis.enabled:
        wanted.append(DIAGNOSIS.name)
    if config.control_plane.pfcp:
        wanted.append(N4_FILTER.name)
    return tuple(wanted)


def run_agent(
    config: AgentConfig, ready: Callable[[str], None] = print, config_path: Path | None = None
) -> None:
    """Blocks until SIGTERM/SIGINT; `ready` hears the API's base URL once it
    listens (after every program is attached). The data path is adopted or
    built (sauron.agent.datapath); stopping removes it, or leaves it
    counting with datapath.keep_on_stop; a start that fails leaves counting
    the data path it found, and removes one it built."""
    where = config_path or Path("(configuration)")
    config = resolve_namespaces(config, where)
    config = resolve_links(config, where)
    catalog = load_catalog(config.catalog)
    options = service_options(config)  # a bad token file fails before anything is attached
    publisher = open_publisher(config.influx, config.node, where)
    otlp = open_otlp(config.otlp, config.node)
    remote_write = open_remote_write(config.remote_write, config.node, where, publisher)
    datapath = AgentDataPath(
        pin_folder(config.node, config_path),
        config.datapath.state_dir,
        extra_cflags(),
        companions=companions_for(config),
    )
    meter: EnergyMeter | None = None
    diagnosing: Diagnosing | None = None
    control: ControlPlane | None = None
    started = False
    try:
        dp = datapath.open()
        reading = datapath.baseline()
        control = resume_control_plane(
            config, catalog, dp, datapath, None if reading is None else reading.at, where
        )
        program_catalog(dp, catalog, keep=control.learned_rules())
        apply_settings(dp, measure_settings(catalog, config.interfaces))
        datapath.attach(config.interfaces)
        expiry = TransitExpiry(dp)
        meter, energy_off = open_energy(
            config.energy, catalog, dp, datapath, config_path, receiving_links(config.interfaces)
        )
        open_control_plane(control, config, where)
        runtime = AgentRuntime(
            catalog,
            ProgramMaps(dp, expiry, catalog.slice_rows),
            interval_s=config.interval_s,
            history=History(config.history.recent, config.history.fold, config.history.folded),
            sla=SlaTracker(
                catalog,
                window=config.sla.window,
                open_bad=config.sla.open_bad,
                close_good=config.sla.close_good,
            ),
            energy=meter,
            energy_off=energy_off,
            control=control,
            exporters=[e for e in (publisher, remote_write, otlp) if e is not None],
            baseline=None if reading is None else (reading.counters, reading.at),
        )
        runtime.data_path = datapath.start.detail() if datapath.start else None
        runtime.prometheus.open5gs_names = config.service.open5gs_metric_names
        runtime.prometheus.attached = datapath.attached
        diagnosing = open_diagnosing(
            config.diagnosis,
            config.energy.watch,
            runtime.engine.sla,
            datapath.companion_builds.get(DIAGNOSIS.name),
            datapath.companion_failed.get(DIAGNOSIS.name, ""),
            [i.name for i in config.interfaces if i.link == "upf_device"],
            dp,
            lambda: {s.name: s.id for s in runtime.engine.catalog.slices},
        )
        if diagnosing is not None:
            runtime.diagnosing = diagnosing
            # first: a violation opened this interval carries its diagnosis
            # in the event the exporters write
            runtime.listen("diagnosis", diagnosing.on_snapshot, first=True)
            publish_diagnoses(publisher, diagnosing)
        security = open_securing(config, dp, datapath, control)
        if security is not None:
            runtime.secure(security)
        checkpoint = datapath.checkpoint
        if checkpoint is not None:
            runtime.listen(
                "checkpoint", lambda snap: checkpoint.save(runtime.engine.counters, snap.time)
            )
        started = True
        release_freed_memory()
        asyncio.run(_serve_until_stopped(runtime, options, config, ready, where))
    finally:
        if control is not None:
            control.close()
        if meter is not None:
            meter.close()
        if diagnosing is not None:
            diagnosing.close()
        # a start that failed leaves counting what it found
        datapath.stop(
            keep=config.datapath.keep_on_stop or (not started and datapath.found_existing)
        )


def release_freed_memory() -> None:
    """Hands the heap that compiling the programs freed back to the system:
    LLVM's working memory is freed but glibc keeps it (about 80 MB of the
    agent's resident memory)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def describe(config: AgentConfig, path: Path) -> str:
    links = ", ".join(f"{i.name} ({i.role})" for i in config.interfaces)
    return f"{path}: node {config.node}, interfaces {links}, every {config.interval_s:g} s"
