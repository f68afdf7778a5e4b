#!/bin/bash
# The data network: routes each slice's UE pool to its UPF's n6 address, then
# serves iperf3 (TCP/UDP 5201) and answers ping. Traffic per slice is
# started from the UE containers (README.md).
set -euo pipefail
ip route replace 10.45.0.0/16 via 10.100.6.41   # embb  -> upf-embb
ip route replace 10.46.0.0/16 via 10.100.6.42   # urllc -> upf-urllc
ip route replace 10.47.0.0/16 via 10.100.6.43   # mmtc  -> upf-mmtc
exec iperf3 --server
