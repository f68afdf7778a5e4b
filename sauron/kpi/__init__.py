"""KPIs: the records, the engine and its history, latency and loss, SLA,
sessions, UPF drops."""
