/* GTP-U path RTT per peer from echo request/response pairs (TS 29.281: both
 * carry the same sequence number). Seen on N3/N9 only. */
#ifndef SAURON_LIB_ECHO_H
#define SAURON_LIB_ECHO_H

#include "sauron_shared.h"
#include "lib/histogram.h"
#include "lib/measure.h"

SAURON_KEPT_TABLE("lru_hash", struct sauron_echo_key, struct sauron_stamp, echo_stamps,
		  SAURON_ECHO_STAMPS, 0);
SAURON_KEPT_TABLE("lru_percpu_hash", struct sauron_peer_key, struct sauron_latency_hist, peer_rtt,
		  SAURON_MAX_PEERS, 0);
/* never written: the initial value of a new peer's histogram, too large for
 * the stack */
BPF_ARRAY(empty_hist, struct sauron_latency_hist, 1);

/* outgoing: the message leaves through this point (egress) */
static __always_inline void echo_request(const __u8 peer[16], __u32 seq, int outgoing)
{
	struct sauron_echo_key key = { .seq = seq,
				       .initiator =
					       outgoing ? SAURON_ECHO_LOCAL : SAURON_ECHO_PEER };
	__builtin_memcpy(key.peer, peer, 16);
	struct sauron_stamp stamp = { .ns = bpf_ktime_get_ns() };
	echo_stamps.update(&key, &stamp);
}

static __always_inline void echo_response(const __u8 peer[16], __u32 seq, int outgoing)
{
	/* a response going out answers the peer's request, and the reverse */
	struct sauron_echo_key key = { .seq = seq,
				       .initiator =
					       outgoing ? SAURON_ECHO_PEER : SAURON_ECHO_LOCAL };
	__builtin_memcpy(key.peer, peer, 16);
	struct sauron_stamp *stamp = echo_stamps.lookup(&key);
	if (!stamp)
		return;
	__u64 now = bpf_ktime_get_ns();
	__u64 rtt = now > stamp->ns ? now - stamp->ns : 0;
	if (echo_stamps.delete(&key) != 0)
		return;
	struct sauron_peer_key pk = { .initiator = key.initiator };
	__builtin_memcpy(pk.peer, peer, 16);
	struct sauron_latency_hist *h = peer_rtt.lookup(&pk);
	if (!h) {
		__u32 zero = 0;
		struct sauron_latency_hist *fresh = empty_hist.lookup(&zero);
		if (!fresh)
			return;
		peer_rtt.update(&pk, fresh);
		h = peer_rtt.lookup(&pk);
		if (!h)
			return;
	}
	hist_record(h, rtt);
}

#endif /* SAURON_LIB_ECHO_H */
