"""What rendering /metrics costs: the exposition's own writer
(sauron.export.prometheus.render_engine) beside the official
`prometheus_client`'s, on the same families, measured side by side in one
process. This is the measurement the choice of writer rests on.

The agent's engine reads the real programs (the catalog programmed, a
session per slice sent through the N3 program with BPF_PROG_TEST_RUN) and
ticks twice, so every family holds real counts and histogram buckets. Then:

- own: `render_engine(engine)`, walking the engine and writing the text;
- client: `prometheus_client.generate_latest` over a collector yielding the
  same families and samples. The samples are read off the own writer's text
  once, outside the timing, so the client is timed for building its metric
  objects and writing, never for walking the engine: if anything, this
  favours the client.

The figures are CPU milliseconds per rendering (median of repeats, spread
half their interquartile range), and the client's over the own's.
`prometheus_client` is a development dependency only: the agent does not
carry it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bench.figures import Figure, figure
from bench.scaling import _send_all, _sessions, catalog_of
from sauron.abi import layout
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.bpf.loader import DataPlane
from sauron.bpf.rules import program_catalog
from sauron.export.prometheus import render_engine

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
Family = tuple[str, str, str, list[tuple[str, dict[str, str], float]]]


def families_of(text: str) -> list[Family]:
    """(name, type, help, samples) of each family in an exposition."""
    out: list[Family] = []
    helps: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            base = name.removesuffix("_total") if kind == "counter" else name
            out.append((base, kind, helps[name], []))
        elif line:
            match = SAMPLE.match(line)
            assert match is not None, line
            labels = dict(LABEL.findall(match.group(2) or ""))
            out[-1][3].append((match.group(1), labels, float(match.group(3))))
    return out


class SameFamilies(Collector):
    """A prometheus_client collector yielding the given families."""

    def __init__(self, families: list[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for name, kind, help_text, samples in self.families:
            metric = Metric(name, help_text, kind)
            for sample, labels, value in samples:
                metric.add_sample(sample, labels, value)
            yield metric


def _cpu_ms(render: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.process_time()
        render()
        out.append((time.process_time() - t0) * 1e3)
    return out


def _case(slices: int, repeats: int) -> tuple[list[float], list[float], int]:
    catalog = catalog_of(slices)
    dp = DataPlane()
    program_catalog(dp, catalog)
    engine = AgentRuntime(catalog, ProgramMaps(dp, slices=catalog.slice_rows)).engine
    fd = dp.program_fd(layout.POINT_N3_INGRESS)
    for _ in range(2):
        _send_all(fd, _sessions(catalog, 10 * slices))
        engine.tick()
    text = render_engine(engine)
    families = families_of(text)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SameFamilies(families))
    theirs = generate_latest(registry).decode()
    # the same samples both ways, or the comparison means nothing
    assert sum(len(f[3]) for f in families_of(theirs)) == sum(len(f[3]) for f in families)
    own = _cpu_ms(lambda: render_engine(engine), repeats)
    client = _cpu_ms(lambda: generate_latest(registry), repeats)
    dp.close()
    return own, client, sum(len(f[3]) for f in families)


def run(quick: bool = False) -> list[Figure]:
    repeats = 5 if quick else 41
    figures: list[Figure] = []
    for slices in (3,) if quick else (3, 64):
        own, client, series = _case(slices, repeats)
        what = f"{slices} slices, {series} series: the engine's families, CPU time"
        figures += [
            figure(f"exposition_{slices}_own_ms", own, "ms CPU", what=what + ", own writer"),
            figure(
                f"exposition_{slices}_client_ms",
                client,
                "ms CPU",
                what=what + ", prometheus_client (the samples given)",
            ),
            figure(
                f"exposition_{slices}_client_over_own",
                [c / o for c, o in zip(client, own, strict=True)],
                "x",
                what="prometheus_client's time over the own writer's, same samples",
            ),
        ]
    return figures
