"""The BPF side of the agent: sources in xdp/, their shared layout, loading,
map access and BPF_PROG_TEST_RUN."""
