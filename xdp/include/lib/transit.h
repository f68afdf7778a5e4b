/* UPF transit latency: the user's packet is stamped where it enters the UPF
 * (XDP on N3 for uplink, on N6 for downlink) under a fingerprint of fields
 * that survive decapsulation and NAT, and matched where it leaves (TC on N6,
 * on N3). Stamps nobody matches are expired by the agent and counted as loss
 * inside the UPF. */
#ifndef SAURON_LIB_TRANSIT_H
#define SAURON_LIB_TRANSIT_H

#include "sauron_shared.h"
#include "lib/parse.h"
#include "lib/l4.h"
#include "lib/measure.h"

BPF_HASH(transit_stamps, struct sauron_fingerprint, struct sauron_stamp, SAURON_TRANSIT_STAMPS);

/* The far end is the uplink's destination and the downlink's source. */
static __always_inline void build_fingerprint(const struct ip_view *ip, const struct l4_facts *t,
					      __u32 dir, struct sauron_fingerprint *fp)
{
	if (dir == SAURON_DIR_UPLINK) {
		__builtin_memcpy(fp->remote, ip->daddr, 16);
		fp->remote_port = t->dport;
	} else {
		__builtin_memcpy(fp->remote, ip->saddr, 16);
		fp->remote_port = t->sport;
	}
	fp->proto = ip->proto;
	fp->direction = dir;
	fp->ip_id = ip->ip_id;
	fp->length = ip->total_len;
	fp->l4_a = t->word_a;
	fp->l4_b = t->word_b;
}

/* Both sides compute it from the same fields, so both take the same
 * sampling decision without sharing state. */
static __always_inline __u32 fingerprint_hash(const struct sauron_fingerprint *fp)
{
	const __u32 *w = (const __u32 *)fp->remote;
	__u32 h = w[0] ^ w[1] ^ w[2] ^ w[3] ^ (((__u32)fp->remote_port << 16) | fp->proto);

	h = (h * 2654435761u) ^ fp->ip_id;
	h = (h * 2654435761u) ^ fp->length;
	h = (h * 2654435761u) ^ fp->l4_a;
	h = (h * 2654435761u) ^ fp->l4_b;
	h *= 2654435761u;
	return h ^ (h >> 16);
}

static __always_inline void transit_stamp(const struct sauron_config *cfg,
					  const struct ip_view *ip, const struct l4_facts *t,
					  __u32 slice_id, __u32 dir)
{
	if (!measuring(cfg, SAURON_MEASURE_TRANSIT))
		return;
	__u32 index = slice_id % SAURON_MAX_SLICES;
	struct sauron_slice_config *sc = slice_config.lookup(&index);
	if (!sc || !(sc->flags & SAURON_SLICE_TRANSIT))
		return;
	struct sauron_fingerprint fp = {};
	build_fingerprint(ip, t, dir, &fp);
	if (fingerprint_hash(&fp) & sc->transit_sample_mask)
		return;
	if (ip->payload_len > SAURON_TRANSIT_MAX_PAYLOAD) {
		struct sauron_measure_stats *agg = measure_of(index, dir);
		if (agg)
			agg->transit_aggregate += 1;
		return;
	}
	struct sauron_stamp stamp = { .ns = bpf_ktime_get_ns(), .slice_id = index };
	int err = transit_stamps.insert(&fp, &stamp);
	struct sauron_measure_stats *m = measure_of(index, dir);
	if (!m)
		return;
	if (err == 0)
		m->transit_stamped += 1;
	else if (err == -EEXIST)
		m->transit_duplicate += 1;
	else
		m->transit_table_full += 1;
}

/* Returns 1 with the stamping slice and the transit time when the packet
 * was stamped on the other side. */
static __always_inline int transit_match(const struct sauron_config *cfg,
					 const struct ip_view *ip, const struct l4_facts *t,
					 __u32 dir, __u32 *stamp_slice, __u64 *transit_ns)
{
	if (!measuring(cfg, SAURON_MEASURE_TRANSIT))
		return 0;
	struct sauron_fingerprint fp = {};
	build_fingerprint(ip, t, dir, &fp);
	if (fingerprint_hash(&fp) & cfg->transit_lookup_mask)
		return 0;
	struct sauron_stamp *stamp = transit_stamps.lookup(&fp);
	if (!stamp)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 then = stamp->ns;
	__u32 slice_id = stamp->slice_id % SAURON_MAX_SLICES;
	/* the agent may have expired it meanwhile, and counted it lost */
	int gone = transit_stamps.delete(&fp);
	struct sauron_measure_stats *m = measure_of(slice_id, dir);
	if (gone) {
		if (m)
			m->transit_late += 1;
		return 0;
	}
	if (m)
		m->transit_matched += 1;
	*stamp_slice = slice_id;
	*transit_ns = now > then ? now - then : 0;
	return 1;
}

#endif /* SAURON_LIB_TRANSIT_H */
