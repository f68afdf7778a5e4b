/* UPF transit latency: the user's packet is stamped where it enters the UPF
 * (N3 for uplink, N6 for downlink) under a fingerprint of fields that
 * survive decapsulation and NAT, and matched where it leaves (N6, N3).
 * Stamps live in direct-mapped one-line slots (no hash table insert, no
 * lock); those nobody matches are expired, by the agent's sweep or by a
 * stamp that needs the slot, and counted as loss inside the UPF. */
#ifndef SAURON_LIB_TRANSIT_H
#define SAURON_LIB_TRANSIT_H

#include "sauron_shared.h"
#include "lib/parse.h"
#include "lib/l4.h"
#include "lib/measure.h"

_Static_assert(sizeof(struct sauron_transit_slot) == 64, "a transit slot is one cache line");
_Static_assert((SAURON_TRANSIT_STAMPS & (SAURON_TRANSIT_STAMPS - 1)) == 0,
	       "transit slots are indexed by a mask");

SAURON_KEPT_TABLE("array", __u32, struct sauron_transit_slot, transit_slots, SAURON_TRANSIT_STAMPS,
		  BPF_F_MMAPABLE);

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

/* A fingerprint's two slots, side by side (two ways, so that a slot held
 * by another stamp, a loss waiting for its expiry most often, seldom turns
 * a packet away). Sampling keeps hashes whose low bits are zero, so the
 * index comes from the high bits, mixed once more. */
static __always_inline __u32 transit_slot_index(__u32 hash)
{
	return ((hash * 0x9e3779b1u) >> 16) & (SAURON_TRANSIT_STAMPS - 1);
}

static __always_inline int same_fingerprint(const struct sauron_fingerprint *a,
					    const struct sauron_fingerprint *b)
{
	const __u64 *x = (const __u64 *)a;
	const __u64 *y = (const __u64 *)b;
	_Static_assert(sizeof(*a) == 5 * sizeof(__u64), "a fingerprint is five words");
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

static __always_inline int slot_phase(__u64 state, __u64 phase)
{
	return (state & SAURON_TRANSIT_PHASE) == phase;
}

/* Counts a stamp nobody matched in time as lost, under the slice and
 * direction it was taken for. */
static __always_inline void count_expired(__u32 slice_id, __u32 dir)
{
	struct sauron_measure_stats *m = measure_of(slice_id, dir);
	if (m)
		m->transit_expired += 1;
}

/* Takes the slot from the state read, fills it and publishes it. */
static __always_inline int take_slot(struct sauron_transit_slot *slot, __u64 state,
				     const struct sauron_fingerprint *fp, __u32 slice_id, __u64 now)
{
	__u64 next = (state & ~(__u64)SAURON_TRANSIT_PHASE) + SAURON_TRANSIT_GENERATION;
	if (__sync_val_compare_and_swap(&slot->state, state, next | SAURON_TRANSIT_WRITING) !=
	    state)
		return 0;
	slot->ns = now;
	slot->slice_id = slice_id;
	__builtin_memcpy(&slot->fp, fp, sizeof(*fp));
	/* an exchange orders the writes above before the state others test */
	__sync_lock_test_and_set(&slot->state, next | SAURON_TRANSIT_PENDING);
	return 1;
}

static __always_inline int overdue(const struct sauron_config *cfg,
				   const struct sauron_transit_slot *slot, __u64 now)
{
	__u64 then = slot->ns;
	__u64 expiry = cfg->transit_expiry_ns;
	return expiry && now >= then && now - then >= expiry;
}

/* Takes the slot of a stamp past its expiry, counting that stamp lost. */
static __always_inline int take_overdue(struct sauron_transit_slot *slot, __u64 state,
					const struct sauron_fingerprint *fp, __u32 slice_id,
					__u64 now)
{
	__u32 old_slice = slot->slice_id % SAURON_MAX_SLICES;
	__u32 old_dir = slot->fp.direction & 1;
	if (!take_slot(slot, state, fp, slice_id, now))
		return 0;
	count_expired(old_slice, old_dir);
	return 1;
}

/* Where the packet enters the UPF. Its two slots may hold: the same
 * fingerprint still pending (a duplicate, not stamped again, unless past the
 * expiry), a free slot (stamped), a stamp past the expiry (counted lost, its
 * slot taken), or two other live stamps (not stamped: busy). */
static __always_inline void transit_stamp(const struct sauron_config *cfg, const struct ip_view *ip,
					  const struct l4_facts *t, __u32 slice_id, __u32 dir)
{
	if (!measuring(cfg, SAURON_MEASURE_TRANSIT))
		return;
	__u32 index = slice_id % SAURON_MAX_SLICES;
	struct sauron_slice_config *sc = slice_config.lookup(&index);
	if (!sc || !(sc->flags & SAURON_SLICE_TRANSIT))
		return;
	struct sauron_fingerprint fp = {};
	build_fingerprint(ip, t, dir, &fp);
	__u32 hash = fingerprint_hash(&fp);
	if (hash & sc->transit_sample_mask)
		return;
	struct sauron_measure_stats *m = measure_of(index, dir);
	if (!m)
		return;
	if (ip->payload_len > SAURON_TRANSIT_MAX_PAYLOAD) {
		m->transit_aggregate += 1;
		return;
	}
	__u32 first = transit_slot_index(hash);
	__u32 second = first ^ 1;
	struct sauron_transit_slot *a = transit_slots.lookup(&first);
	struct sauron_transit_slot *b = transit_slots.lookup(&second);
	if (!a || !b)
		return;
	__u64 sa = a->state;
	__u64 sb = b->state;
	struct sauron_transit_slot *same = NULL;
	__u64 same_state = 0;
	if (slot_phase(sa, SAURON_TRANSIT_PENDING) && same_fingerprint(&a->fp, &fp)) {
		same = a;
		same_state = sa;
	} else if (slot_phase(sb, SAURON_TRANSIT_PENDING) && same_fingerprint(&b->fp, &fp)) {
		same = b;
		same_state = sb;
	}
	int taken = 0;
	if (same) {
		/* the clock costs more than the rest of the stamp: read only when
		 * an age matters */
		__u64 now = cfg->transit_expiry_ns ? bpf_ktime_get_ns() : 0;
		if (!overdue(cfg, same, now)) {
			m->transit_duplicate += 1;
			return;
		}
		taken = take_overdue(same, same_state, &fp, index, now);
	} else {
		__u64 now = bpf_ktime_get_ns();
		if (slot_phase(sa, SAURON_TRANSIT_FREE))
			taken = take_slot(a, sa, &fp, index, now);
		else if (slot_phase(sb, SAURON_TRANSIT_FREE))
			taken = take_slot(b, sb, &fp, index, now);
		else if (slot_phase(sa, SAURON_TRANSIT_PENDING) && overdue(cfg, a, now))
			taken = take_overdue(a, sa, &fp, index, now);
		else if (slot_phase(sb, SAURON_TRANSIT_PENDING) && overdue(cfg, b, now))
			taken = take_overdue(b, sb, &fp, index, now);
	}
	if (taken)
		m->transit_stamped += 1;
	else
		m->transit_table_full += 1;
}

/* Returns 1 with the stamping slice and the transit time when the packet
 * was stamped on the other side. */
static __always_inline int transit_match(const struct sauron_config *cfg, const struct ip_view *ip,
					 const struct l4_facts *t, __u32 dir, __u32 *stamp_slice,
					 __u64 *transit_ns)
{
	if (!measuring(cfg, SAURON_MEASURE_TRANSIT))
		return 0;
	struct sauron_fingerprint fp = {};
	build_fingerprint(ip, t, dir, &fp);
	__u32 hash = fingerprint_hash(&fp);
	if (hash & cfg->transit_lookup_mask)
		return 0;
	__u32 index = transit_slot_index(hash);
	struct sauron_transit_slot *slot = transit_slots.lookup(&index);
	if (!slot)
		return 0;
	__u64 state = slot->state;
	if (!slot_phase(state, SAURON_TRANSIT_PENDING) || !same_fingerprint(&slot->fp, &fp)) {
		index ^= 1;
		slot = transit_slots.lookup(&index);
		if (!slot)
			return 0;
		state = slot->state;
		if (!slot_phase(state, SAURON_TRANSIT_PENDING) || !same_fingerprint(&slot->fp, &fp))
			return 0;
	}
	__u64 now = bpf_ktime_get_ns();
	__u64 then = slot->ns;
	__u32 slice_id = slot->slice_id % SAURON_MAX_SLICES;
	/* freed meanwhile by the expiry, which counted it lost */
	__u64 freed = state & ~(__u64)SAURON_TRANSIT_PHASE;
	int gone = __sync_val_compare_and_swap(&slot->state, state, freed) != state;
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

/* Frees the slots the agent found expired, each only if it still holds the
 * very state the agent read (a match or a newer stamp since wins), counting
 * each freed stamp lost. `pairs` is (index, state) per slot; the state of
 * each slot freed comes back zero (a pending state never is). */
static __always_inline void transit_expire(__u64 *pairs, void *data_end)
{
	for (int i = 0; i < SAURON_TRANSIT_EXPIRE_BATCH; i++) {
		__u64 *pair = pairs + 2 * i;
		if ((void *)(pair + 2) > data_end)
			break;
		__u32 index = (__u32)pair[0];
		__u64 state = pair[1];
		if ((state & SAURON_TRANSIT_PHASE) != SAURON_TRANSIT_PENDING)
			continue;
		struct sauron_transit_slot *slot = transit_slots.lookup(&index);
		if (!slot)
			continue;
		__u32 slice_id = slot->slice_id % SAURON_MAX_SLICES;
		__u32 dir = slot->fp.direction & 1;
		__u64 free_state = state & ~(__u64)SAURON_TRANSIT_PHASE;
		if (__sync_val_compare_and_swap(&slot->state, state, free_state) != state)
			continue;
		count_expired(slice_id, dir);
		pair[1] = 0;
	}
}

#endif /* SAURON_LIB_TRANSIT_H */
