"""Lossless delivery of timestamped lines to a server: the queue, its
journal, the disk spool, retry and accounting that the InfluxDB publisher
and the remote-write exporter share."""
