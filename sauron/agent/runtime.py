"""The agent's runtime: the one place that puts the agent together and runs
it. It makes the KPI engine over a data plane, wires the energy meter, the
control plane and the exporters to it, and owns their start and stop: the
exporters, then the control plane, then the tick, one per interval; stopping
undoes them in the reverse order (the tick first, waiting for one under way;
the exporters last, the InfluxDB publisher writing or spooling what is still
queued). `sauron run`, the demo, the benchmarks and the tests all use it.

The HTTP service (sauron.service) only reads a runtime (its `AgentView`):
it never starts or stops one."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from sauron.abi import layout
from sauron.bpf.maps import CounterReader, DataPlaneCounters, read_counters
from sauron.catalog import Catalog
from sauron.export.exporter import Exporter, ExporterHealth
from sauron.export.prometheus import PrometheusExporter
from sauron.kpi.engine import KpiEngine
from sauron.kpi.history import History
from sauron.kpi.liveness import TICK, Liveness
from sauron.kpi.records import Snapshot
from sauron.kpi.sla import SlaTracker

if TYPE_CHECKING:
    from sauron.agent.securing import Securing
    from sauron.bpf.measurements import TransitExpiry
    from sauron.control.plane import ControlPlane
    from sauron.energy.meter import EnergyMeter
    from sauron.service.view import DiagnosisLog

#: how long stopping waits for a tick under way to end
SHUTDOWN_TICK_WAIT_S = 10.0


class DataPath(Protocol):
    """What the engine reads each interval: every counter of the data plane
    (monotonic since the programs loaded). The real one is `ProgramMaps`;
    tests stand a fake in (tests/support/fake_data_plane.py)."""

    def read(self) -> DataPlaneCounters: ...


class ProgramMaps:
    """The loaded programs' maps (per-slice rows below `slices`), read the
    way the agent reads them every interval: bpf.maps.CounterReader, where a
    quiet data path costs no system call, overdue transit stamps expired
    first with `expiry`. shortcut=False reads every map in full every time
    (bpf.maps.read_counters), as a benchmark timing the reading does."""

    def __init__(
        self,
        dataplane: object,
        expiry: TransitExpiry | None = None,
        slices: int = layout.MAX_SLICES,
        shortcut: bool = True,
    ) -> None:
        self.dataplane, self.expiry, self.slices = dataplane, expiry, slices
        self.reader = CounterReader(dataplane, expiry, slices) if shortcut else None

    def read(self) -> DataPlaneCounters:
        if self.reader is None:
            return read_counters(self.dataplane, self.expiry, self.slices)
        return self.reader()


class AgentRuntime:
    """The engine over `data_path` with its history, SLA tracker and energy
    meter, the control plane, and the exporters: the Prometheus exposition
    (always there: it is what /metrics renders) first, then `exporters`.
    Each of `exporters` hears every snapshot from the moment the runtime is
    made, guarded (a failure is logged, counted and reported by the liveness,
    never raised into the tick), so a test may drive `engine.tick()` by hand
    on a runtime it never starts, with the parts it needs started itself."""

    def __init__(
        self,
        catalog: Catalog,
        data_path: DataPath,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        history: History | None = None,
        sla: SlaTracker | None = None,
        energy: EnergyMeter | None = None,
        energy_off: str = "",
        control: ControlPlane | None = None,
        exporters: Iterable[Exporter] = (),
        baseline: tuple[DataPlaneCounters, float] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.engine = KpiEngine(
            catalog,
            data_path.read,
            clock,
            history=history,
            sla=sla,
            energy=energy,
            baseline=baseline,
        )
        if energy_off:
            self.engine.energy_off = energy_off
        self.control = control
        #: how the data path was come by, for /readyz (set by `sauron run`)
        self.data_path: dict[str, object] | None = None
        #: the diagnoses of degraded slices (sauron.agent.diagnosing); None: off
        self.diagnosing: DiagnosisLog | None = None
        #: the security checks' detections (sauron.agent.securing); None: off
        self.security: Securing | None = None
        self.liveness = Liveness()
        self.prometheus = PrometheusExporter(self.engine, self.liveness.failures)
        pushed = list(exporters)
        self.exporters: list[Exporter] = [self.prometheus, *pushed]
        self.prometheus.exporters = self.exporters
        # the exposition reads the engine when asked and hears no snapshot:
        # no listener of its own, nor a series of its own among their failures
        for exporter in pushed:
            self.engine.listeners.append(self.liveness.guard(exporter.name, exporter.on_snapshot))
        self._running: contextlib.AsyncExitStack | None = None

    # -- what the service reads (sauron.service.view.AgentView) ----------

    def problems(self) -> list[str]:
        """Why the agent is not measuring: the tick or a listener failing
        interval after interval, or a tick that does not return."""
        return self.liveness.problems()

    def exporter_health(self) -> list[ExporterHealth]:
        return [exporter.health() for exporter in self.exporters]

    def exposition(self) -> tuple[str, ...]:
        """The Prometheus text of /metrics, in parts (see AgentView)."""
        return self.prometheus.parts()

    def listen(
        self, part: str, listener: Callable[[Snapshot], None], first: bool = False
    ) -> Callable[[], None]:
        """`listener` hears every snapshot from now, guarded and reported as
        `part`, like an exporter; `first`: before every other listener (what
        it adds to the engine's state, the exporters then write). Returns
        what ends it."""
        guarded = self.liveness.guard(part, listener)
        if first:
            self.engine.listeners.insert(0, guarded)
        else:
            self.engine.listeners.append(guarded)
        return lambda: self.engine.listeners.remove(guarded)

    def secure(self, security: Securing) -> None:
        """The security checks' detections: in each snapshot before any
        exporter hears it, and their counts on /metrics."""
        self.security = security
        self.listen("security", security.on_snapshot, first=True)
        self.prometheus.detections = security.opened

    # -- start and stop ----------------------------------------------------

    async def start(self) -> None:
        """On the running event loop: the exporters in their order, the
        control plane, then the tick. A part that fails to start stops
        those started before it, and the error goes on."""
        if self._running is not None:
            raise RuntimeError("the runtime is already running")
        running = contextlib.AsyncExitStack()
        try:
            for exporter in self.exporters:
                await exporter.start(self.engine)
                running.push_async_callback(exporter.stop)
            if self.control is not None:
                self.control.start(asyncio.get_running_loop())
                running.push_async_callback(self.control.stop)
            ticker = asyncio.create_task(self._tick_forever())
            running.push_async_callback(self._stop_ticking, ticker)
        except BaseException:
            await running.aclose()
            raise
        self._running = running

    async def stop(self) -> None:
        """The tick (a tick under way ends first, for at most
        SHUTDOWN_TICK_WAIT_S), the control plane, then the exporters from
        the last to the first; each part stops whatever another raised."""
        running, self._running = self._running, None
        if running is not None:
            await running.aclose()

    async def __aenter__(self) -> AgentRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _tick_forever(self) -> None:
        """One tick per interval, whatever the last one met: a failure is
        logged, counted and tried again next interval (see liveness)."""
        liveness = self.liveness
        liveness.interval_s = self.interval_s
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval_s)
            liveness.tick_begins()
            # map reads are blocking system calls: off the event loop
            running = loop.run_in_executor(None, self.engine.tick)
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                # stopping: the tick runs on in its thread and would hand its
                # snapshot to exporters already stopped (the publisher's points
                # then neither written nor spooled): let it end first, bounded
                await asyncio.wait({running}, timeout=SHUTDOWN_TICK_WAIT_S)
                raise
            except Exception as exc:
                liveness.failed(TICK, exc)
            else:
                liveness.succeeded(TICK)
            finally:
                liveness.tick_ends()

    @staticmethod
    async def _stop_ticking(ticker: asyncio.Task[None]) -> None:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
