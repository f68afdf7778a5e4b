"""What the agent asks the programs to measure: transit stamps only when
both sides of the UPF are watched. An agent on N3 alone that stamped every
packet would see each stamp expire unmatched, and report every packet lost
inside the UPF (and, its loss target failing, diagnose a loss that is not)."""

from __future__ import annotations

from sauron.agent.config import InterfaceConfig
from sauron.agent.run import measure_settings
from sauron.catalog import load_catalog


def interfaces(*roles: str) -> list[InterfaceConfig]:
    return [
        InterfaceConfig.model_validate({"name": f"if{i}", "role": r}) for i, r in enumerate(roles)
    ]


def test_transit_is_stamped_only_with_both_sides_watched() -> None:
    catalog = load_catalog()
    assert not measure_settings(catalog, interfaces("n3")).transit
    assert not measure_settings(catalog, interfaces("n6")).transit
    for both in (("n3", "n6"), ("n9", "n6"), ("n3", "n9", "n6")):
        settings = measure_settings(catalog, interfaces(*both))
        assert settings.transit and settings.transit_one_in, both
    # the rest is measured either way
    alone = measure_settings(catalog, interfaces("n3"))
    assert alone.rtt and alone.sequence and alone.retransmissions
