"""Prometheus remote write 1.0: the engine's families as /metrics names
them, each sample with its snapshot's timestamp, delivered losslessly to
VictoriaMetrics, Mimir, Thanos or Prometheus itself."""
