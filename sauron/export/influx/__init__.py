"""The InfluxDB exporter: points, the async writer, retry and the on-disk
spool."""
