"""The BPF side of the agent: its C in c/ (package data: datapath entry and
measurement programs, energy tracepoints, the N4 socket filter, probes for
the doctor and tests, and the shared include/), loading, map access and
BPF_PROG_TEST_RUN."""
