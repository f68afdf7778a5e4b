"""Property-based API tests: schemathesis generates requests from the OpenAPI
document (valid and invalid parameters) against the agent's service on
loopback, whose engine reads the real programs after frames went through
them, and checks every response: no 5xx, status, content type and body as
the document says."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator

import pytest
import schemathesis
from frames import gtpu, natted, plain, ul_packet
from hypothesis import HealthCheck, settings
from manual_clock import ManualClock
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from served import serve_in_thread

from sauron.abi import layout
from sauron.agent.runtime import AgentRuntime, ProgramMaps
from sauron.agent.securing import Securing
from sauron.bpf import libbpf
from sauron.bpf.loader import DataPlane
from sauron.bpf.measurements import MeasureSettings, apply_settings
from sauron.catalog import Catalog
from sauron.security.settings import SecurityConfig
from sauron.service.app import ServiceOptions, create_app
from sauron.service.openapi import document

pytestmark = [pytest.mark.kernel]

TOKEN = "property-token"
#: the default catalog's slices, named in the document as examples
SLICE_NAMES = ("embb", "urllc", "mmtc")
#: parameters with rules across parameters: until >= since; direction
#: required by the per-direction histograms and refused by the round trips
CROSS_PARAMETER_RULES = {"until", "direction"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: the checks' lists: a gNB that is not the frames' sender, a core prefix
GNB, CORE = ipaddress.ip_address("192.0.2.99"), ipaddress.ip_network("198.18.0.0/15")

# the stream never ends: test_service.py covers it
schema = schemathesis.openapi.from_dict(copy.deepcopy(document(SLICE_NAMES))).exclude(
    path="/api/v1/stream"
)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture()
def served(dataplane: DataPlane, catalog: Catalog) -> Iterator[str]:
    """The service on a free loopback port, in a thread of its own, over an
    engine with a few intervals of real measurements, the security checks
    on as the agent runs them. No rate limit: the generated requests come
    fast (the limiter has its own test)."""
    apply_settings(dataplane, MeasureSettings(transit_one_in=((1, 1),)))
    clock = ManualClock(3_000_000.0)
    runtime = AgentRuntime(catalog, ProgramMaps(dataplane, shortcut=False), clock=clock)
    runtime.security = Securing(
        SecurityConfig(peers=[GNB], protected=[CORE]), dataplane, runtime.interval_s
    )
    runtime.listen("security", runtime.security.on_snapshot, first=True)
    for interval in range(3):
        for n in range(5):
            packet = ul_packet(f"i{interval}n{n}".encode(), ip_id=interval * 10 + n)
            libbpf.test_run(
                dataplane.program_fd(layout.POINT_N3_INGRESS),
                gtpu(packet, 0x10007, uplink=True, seq=interval * 10 + n * 2),
            )
            libbpf.test_run(dataplane.program_fd(layout.POINT_N6_EGRESS), plain(natted(packet)))
        clock.t += 1
        runtime.engine.tick()

    app = create_app(runtime, options=ServiceOptions(token=TOKEN, rate_per_s=0))
    with serve_in_thread(app) as url:
        yield url


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    # one service per operation serves all its examples, on purpose
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_response_is_as_documented(case: schemathesis.Case, served: str) -> None:
    response = case.call(base_url=served, headers=AUTH, timeout=10)
    # a schema-valid request may still break a rule between parameters that
    # OpenAPI cannot state; such a 400 must name one of those parameters
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
    positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if positive and response.status_code == 400:
        assert response.json()["param"] in CROSS_PARAMETER_RULES, response.text
