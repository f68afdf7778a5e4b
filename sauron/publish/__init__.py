"""Publishing KPI snapshots to InfluxDB (2.x, and the v2 write API of 3.x and
compatible servers): line protocol, the schema, a disk spool for outages,
and the publisher that batches, retries and replays."""
