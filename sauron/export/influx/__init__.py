"""The InfluxDB exporter: points and the writer; their lossless delivery is
sauron.export.delivery's."""
