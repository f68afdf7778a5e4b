#!/bin/bash
# Subscribers of the testbed: two UEs per slice (nr-ue -n 2 counts up from the
# IMSI in ../ueransim/ue-SLICE.yaml), each with its slice's DNN and S-NSSAI.
set -euo pipefail
KEY=465B5CE8B199B49FAA5F0A2EE238A6BC
OPC=E8ED289DEBA952E4283B54E88E6183CA
#        first IMSI       DNN      SST SD
SLICES=("001010000000001 internet 1 000001"
        "001010000000011 urllc    2 000001"
        "001010000000021 iot      3 000001")
for slice in "${SLICES[@]}"; do
    read -r first dnn sst sd <<<"$slice"
    for n in 0 1; do
        imsi=$(printf '%015d' $((10#$first + n)))
        open5gs-dbctl --db_uri="$DB_URI" remove "$imsi" >/dev/null 2>&1 || true
        open5gs-dbctl --db_uri="$DB_URI" add_ue_with_slice "$imsi" "$KEY" "$OPC" "$dnn" "$sst" "$sd"
    done
done
