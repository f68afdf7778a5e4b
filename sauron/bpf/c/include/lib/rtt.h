/* Passive round-trip times from the user's own TCP, split at the UPF: the
 * RAN side (UPF <-> UE) from segments leaving on N3 and the replies entering
 * on N3; the DN side (UPF <-> server) from segments leaving on N6 and the
 * replies entering on N6. A reply matches a segment by the timestamp it
 * echoes (TCP timestamps option) or, without timestamps, by acknowledging a
 * SYN. */
#ifndef SAURON_LIB_RTT_H
#define SAURON_LIB_RTT_H

#include "sauron_shared.h"
#include "lib/parse.h"
#include "lib/l4.h"
#include "lib/measure.h"

SAURON_KEPT_TABLE("lru_hash", struct sauron_rtt_key, struct sauron_stamp, rtt_stamps,
		  SAURON_RTT_STAMPS, 0);

enum rtt_side {
	RTT_SIDE_RAN = 0,
	RTT_SIDE_DN = 1,
};

/* The UE's end is the uplink's source and the downlink's destination. */
static __always_inline void rtt_flow(const struct ip_view *ip, const struct l4_facts *t, __u32 dir,
				     struct sauron_rtt_key *k)
{
	if (dir == SAURON_DIR_UPLINK) {
		__builtin_memcpy(k->local, ip->saddr, 16);
		__builtin_memcpy(k->remote, ip->daddr, 16);
		k->local_port = t->sport;
		k->remote_port = t->dport;
	} else {
		__builtin_memcpy(k->local, ip->daddr, 16);
		__builtin_memcpy(k->remote, ip->saddr, 16);
		k->local_port = t->dport;
		k->remote_port = t->sport;
	}
}

static __always_inline __u32 rtt_metric(__u32 side)
{
	return side == RTT_SIDE_RAN ? SAURON_LAT_RAN_RTT : SAURON_LAT_DN_RTT;
}

/* A segment leaving towards the measured side. */
static __always_inline void rtt_outbound(const struct sauron_config *cfg, __u32 side,
					 const struct ip_view *ip, const struct l4_facts *t,
					 __u32 dir, __u32 slice_id)
{
	if (!measuring(cfg, SAURON_MEASURE_RTT) || t->proto != IPPROTO_TCP || !t->ok)
		return;
	int want_ts = t->has_ts && !(t->tsval & cfg->rtt_ts_mask);
	int want_syn = !t->has_ts && (t->tcp_flags & TCP_FLAG_SYN_BIT);
	if (!want_ts && !want_syn)
		return;
	struct sauron_rtt_key k = {};
	rtt_flow(ip, t, dir, &k);
	struct sauron_stamp stamp = { .ns = bpf_ktime_get_ns(), .slice_id = slice_id };
	int err;
	if (want_ts) {
		k.echo = t->tsval;
		k.kind = side * 2 + SAURON_RTT_RAN_TIMESTAMP;
		/* the first segment carrying a timestamp value keeps the stamp */
		err = rtt_stamps.insert(&k, &stamp);
	} else {
		k.echo = t->tcp_seq + 1;
		k.kind = side * 2 + SAURON_RTT_RAN_HANDSHAKE;
		err = rtt_stamps.update(&k, &stamp);
	}
	if (err == 0) {
		struct sauron_measure_stats *m = measure_of(slice_id, dir);
		if (m)
			m->rtt_stamped += 1;
	}
}

/* A reply entering from the measured side: one sample when it echoes a
 * stamped segment. */
static __always_inline void rtt_inbound(const struct sauron_config *cfg, __u32 side,
					const struct ip_view *ip, const struct l4_facts *t,
					__u32 dir)
{
	if (!measuring(cfg, SAURON_MEASURE_RTT) || t->proto != IPPROTO_TCP || !t->ok)
		return;
	struct sauron_rtt_key k = {};
	if (t->has_ts) {
		if (!(t->tcp_flags & TCP_FLAG_ACK_BIT) || (t->tsecr & cfg->rtt_ts_mask) ||
		    !t->tsecr)
			return;
		k.echo = t->tsecr;
		k.kind = side * 2 + SAURON_RTT_RAN_TIMESTAMP;
	} else {
		/* the SYN-ACK answering a SYN, or the pure ACK answering a SYN-ACK */
		__u8 flags = t->tcp_flags & (TCP_FLAG_SYN_BIT | TCP_FLAG_ACK_BIT |
					     TCP_FLAG_FIN_BIT | TCP_FLAG_RST_BIT);
		int syn_ack = flags == (TCP_FLAG_SYN_BIT | TCP_FLAG_ACK_BIT);
		int pure_ack = flags == TCP_FLAG_ACK_BIT && t->tcp_payload == 0;
		if (!syn_ack && !pure_ack)
			return;
		k.echo = t->tcp_ack;
		k.kind = side * 2 + SAURON_RTT_RAN_HANDSHAKE;
	}
	/* the reply runs the other way: its flow key is the stamp's */
	rtt_flow(ip, t, dir, &k);
	struct sauron_stamp *stamp = rtt_stamps.lookup(&k);
	if (!stamp)
		return;
	__u64 now = bpf_ktime_get_ns();
	__u64 then = stamp->ns;
	__u32 slice_id = stamp->slice_id % SAURON_MAX_SLICES;
	if (rtt_stamps.delete(&k) != 0)
		return;
	/* kept under the direction of the stamped segment */
	__u32 out_dir = dir ^ 1;
	record_latency(rtt_metric(side), slice_id, out_dir, now > then ? now - then : 0);
	struct sauron_measure_stats *m = measure_of(slice_id, out_dir);
	if (m)
		m->rtt_samples += 1;
}

#endif /* SAURON_LIB_RTT_H */
