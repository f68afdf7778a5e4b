"""The agent: its configuration, the links it attaches to, and the runtime
that starts and stops it."""
