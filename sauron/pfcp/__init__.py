"""PFCP (N4, TS 29.244): decoding the session messages an SMF and a UPF
exchange, and learning from them which TEIDs and UE addresses belong to
which PDU session and slice."""
