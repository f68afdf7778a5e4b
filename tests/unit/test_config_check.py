"""`sauron config check FILE` names each problem with the file, the line
and the field: the loader's errors, a link that is not in its namespace
(with the nearest that is), a catalog that does not load, and what the host
lacks (the doctor's checks, given here as they would fail). The links are
this process's own namespace's: its loopback is always there."""

from __future__ import annotations

from pathlib import Path

from sauron.commands.config_check import check_config
from sauron.host.checks import FAIL, PASS, Check

HOST_OK = [Check("capabilities", PASS, True, "CAP_BPF=yes"), Check("bpffs", PASS, True, "mounted")]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_a_configuration_this_host_can_run_passes(tmp_path: Path) -> None:
    path = write(tmp_path, "interfaces:\n  - name: lo\n    role: n3\n")
    report = check_config(path, HOST_OK)
    assert report.ok, report.problems
    assert "interface lo (n3) in the agent's namespace: link ethernet" in report.passed


def test_a_mistyped_link_is_named_with_its_line_and_the_nearest_link(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "node: a\ninterfaces:\n  - name: lo\n    role: n3\n  - name: lo0\n    role: n6\n"
        "control_plane:\n  pfcp:\n    - name: l0\n",
    )
    report = check_config(path, HOST_OK)
    assert len(report.problems) == 2, report.problems
    assert report.problems[0].startswith(
        f"{path}: line 5: field interfaces.1.name: no link 'lo0' in the agent's namespace (its links: "
    )
    assert report.problems[0].endswith("; did you mean 'lo'?")
    assert report.problems[1].startswith(
        f"{path}: line 9: field control_plane.pfcp.0.name: no link 'l0' in the agent's namespace"
    )


def test_schema_errors_are_the_loaders_and_stop_the_check(tmp_path: Path) -> None:
    path = write(tmp_path, "interfaces:\n  - name: lo\n    role: n4\n")
    report = check_config(path, HOST_OK)
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{path}: line 3: field interfaces.0.role: 'n4' ")


def test_a_namespace_that_does_not_resolve_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "interfaces:\n  - name: lo\n    role: n3\n    netns: pid:999999999\n")
    report = check_config(path, HOST_OK)
    assert report.problems == [
        f"{path}: line 4: field interfaces.0.netns: 'pid:999999999': "
        "no namespace at /proc/999999999/ns/net"
    ]


def test_a_catalog_that_does_not_load_and_a_host_that_lacks_are_problems(tmp_path: Path) -> None:
    (tmp_path / "slices.yaml").write_text("slices:\n  - name: a\n    snssai: {sst: 300}\n")
    path = write(tmp_path, "catalog: slices.yaml\ninterfaces:\n  - {name: lo, role: n3}\n")
    lacking = [Check("capabilities", FAIL, True, "CAP_BPF=no", "grant CAP_BPF")]
    report = check_config(path, lacking)
    assert report.problems[0] == f"{path}: line 1: field catalog: the catalog does not load:"
    assert "field snssai.sst" in report.problems[1]
    assert report.problems[-1] == "this host: capabilities: CAP_BPF=no -> grant CAP_BPF"
