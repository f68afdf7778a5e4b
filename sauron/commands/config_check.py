"""`sauron config check FILE`: an agent configuration held against this
host before the agent is started with it. The file's schema (the loader's
own errors), each interface's namespace and link, each N4 watch's, the
slice catalog, and what the agent needs of the host (capabilities, bpffs:
the doctor's checks). Each problem names the file, the line and the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sauron.agent.config import AgentConfig, ConfigError, load_config
from sauron.agent.interfaces import link_of
from sauron.catalog import CatalogError, default_catalog_path, load_catalog
from sauron.commands.doctor import check_capabilities, check_mount
from sauron.host.access import HOST_PATHS
from sauron.host.checks import FAIL, Check
from sauron.host.field_errors import Location, yaml_lines_of
from sauron.host.namespace_links import links_in
from sauron.host.namespace_ref import NamespaceError, resolve
from sauron.host.nearest_word import nearest


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    #: what passed, in words
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Places:
    """ "FILE: line N: field a.b" for a field of the configuration."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = yaml_lines_of(path)

    def __call__(self, location: Location) -> str:
        line = next(
            (
                self.lines[location[:n]]
                for n in range(len(location), 0, -1)
                if location[:n] in self.lines
            ),
            None,
        )
        at = f"line {line}: " if line is not None else ""
        return f"{self.path}: {at}field {'.'.join(map(str, location))}"


def _link_problem(ns: str | None, name: str, said_ns: str) -> str | None:
    """Why the link is not there (None: it is), with the nearest name there."""
    try:
        names = sorted(links_in(ns))
    except OSError as exc:
        return f"cannot list the links of {said_ns}: {exc.strerror or exc}"
    if name in names:
        return None
    near = nearest(name, names)
    hint = f"; did you mean {near!r}?" if near else ""
    return f"no link {name!r} in {said_ns} (its links: {', '.join(names)}){hint}"


def _namespace(
    ref: str | None, config: AgentConfig, at: Location, places: _Places, report: CheckReport
) -> tuple[bool, str | None, str]:
    """(resolved, the namespace to enter, how to say it)."""
    if ref is None:
        return True, None, "the agent's namespace"
    try:
        return True, resolve(ref, config.container_socket), f"namespace {ref}"
    except NamespaceError as exc:
        report.problems.append(f"{places((*at, 'netns'))}: {exc}")
        return False, None, ""


def _interfaces(config: AgentConfig, places: _Places, report: CheckReport) -> None:
    for i, itf in enumerate(config.interfaces):
        at: Location = ("interfaces", i)
        ok, ns, said = _namespace(itf.netns, config, at, places, report)
        if not ok:
            continue
        missing = _link_problem(ns, itf.name, said)
        if missing:
            report.problems.append(f"{places((*at, 'name'))}: {missing}")
            continue
        try:
            kind = link_of(itf.model_copy(update={"netns": ns}))
        except (LookupError, ValueError) as exc:
            report.problems.append(f"{places((*at, 'link'))}: {exc}")
            continue
        report.passed.append(f"interface {itf.name} ({itf.role}) in {said}: link {kind}")
    for i, watch in enumerate(config.control_plane.pfcp):
        at = ("control_plane", "pfcp", i)
        ok, ns, said = _namespace(watch.netns, config, at, places, report)
        if not ok:
            continue
        missing = _link_problem(ns, watch.name, said)
        if missing:
            report.problems.append(f"{places((*at, 'name'))}: {missing}")
        else:
            report.passed.append(f"N4 watch on {watch.name} in {said}")


def _catalog(config: AgentConfig, places: _Places, report: CheckReport) -> None:
    path = config.catalog or default_catalog_path()
    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        report.problems.append(f"{places(('catalog',))}: the catalog does not load:")
        report.problems.extend(f"  {line}" for line in str(exc).splitlines())
        return
    report.passed.append(
        f"catalog {path}: {len(catalog.slices)} slices ({', '.join(s.name for s in catalog.slices)})"
    )
    for warning in catalog.warnings:
        report.passed.append(f"catalog warning: {warning}")


def host_checks() -> list[Check]:
    """The doctor's checks of what loading and pinning need."""
    bpffs = next(h for h in HOST_PATHS if h.fstype == "bpf")
    return [
        check_capabilities(),
        check_mount(bpffs.name, bpffs.path, "bpf", True),
    ]


def _host(report: CheckReport, checks: list[Check]) -> None:
    for check in checks:
        if check.status == FAIL and check.required:
            remedy = f" -> {check.remedy}" if check.remedy else ""
            report.problems.append(f"this host: {check.name}: {check.reason}{remedy}")
        else:
            report.passed.append(f"this host: {check.name}: {check.reason}")


def check_config(path: Path, checks: list[Check] | None = None) -> CheckReport:
    """Every problem the configuration has on this host (`checks`: the
    host's, run now when not given)."""
    report = CheckReport()
    try:
        config = load_config(path)
    except ConfigError as exc:
        report.problems.extend(str(exc).splitlines())
        return report
    report.passed.append(f"{path}: the schema holds")
    places = _Places(path)
    _interfaces(config, places, report)
    _catalog(config, places, report)
    _host(report, host_checks() if checks is None else checks)
    return report
