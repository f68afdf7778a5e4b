"""Security events on the user plane: what the data path's checks saw
(sauron.bpf.security), and the detections made of them over time."""
