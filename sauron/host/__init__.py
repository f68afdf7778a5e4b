"""The host's plumbing: namespaces and references, capabilities, perf
events, YAML and secret files, logs."""
