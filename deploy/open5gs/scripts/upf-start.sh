#!/bin/bash
# A slice's UPF: its UE pool's TUN (ogstun, addressed with the pool's gateway),
# no NAT (the DN routes the UE pools back to each UPF, so N6 carries the UEs'
# own addresses), the default route over n6, then open5gs-upfd.
# Arguments: the UPF's configuration file, the pool's gateway address/length.
set -euo pipefail
config=$1
gateway=$2
ip tuntap add name ogstun mode tun 2>/dev/null || true
ip addr replace "$gateway" dev ogstun
ip link set ogstun up
ip route replace default via 10.100.6.100 dev n6
exec open5gs-upfd -c "$config"
