/* Per-slice accounting: per-CPU arrays for the counters the agent sums, and
 * per-CPU LRU hashes for the sessions (TEIDs, UE addresses) seen. Per-CPU
 * values need no atomics: a program runs to completion on one CPU. */
#ifndef SAURON_LIB_ACCOUNT_H
#define SAURON_LIB_ACCOUNT_H

#include "sauron_shared.h"

BPF_PERCPU_ARRAY(slice_stats, struct sauron_slice_stats,
		 SAURON_MAX_SLICES * SAURON_POINTS * SAURON_DIRS);
BPF_PERCPU_ARRAY(qfi_stats, struct sauron_traffic,
		 SAURON_MAX_SLICES * SAURON_GTP_POINTS * SAURON_MAX_QFI * SAURON_DIRS);
BPF_PERCPU_ARRAY(events, __u64, SAURON_POINTS * SAURON_EVENTS);
BPF_TABLE("lru_percpu_hash", __u32, struct sauron_session_stats, teid_stats,
	  SAURON_TEID_STATS_ENTRIES);
BPF_TABLE("lru_percpu_hash", struct sauron_ue_key, struct sauron_session_stats, ue_stats,
	  SAURON_UE_STATS_ENTRIES);
BPF_PERCPU_ARRAY(teid_slots, struct sauron_teid_slot, SAURON_TEID_SLOTS);
BPF_ARRAY(config, struct sauron_config, 1);

static __always_inline void count_event(__u32 point, __u32 event)
{
	__u32 key = point * SAURON_EVENTS + event;
	__u64 *value = events.lookup(&key);
	if (value)
		*value += 1;
}

static __always_inline void count_slice(__u32 point, __u32 slice_id, __u32 dir, __u32 msg_kind,
					__u64 bytes, __u64 inner_bytes, int malformed)
{
	__u32 key = (slice_id * SAURON_POINTS + point) * SAURON_DIRS + dir;
	struct sauron_slice_stats *s = slice_stats.lookup(&key);
	if (!s)
		return;
	s->packets += 1;
	s->bytes += bytes;
	s->inner_bytes += inner_bytes;
	if (malformed)
		s->malformed += 1;
	if (msg_kind < SAURON_MSG_KINDS)
		s->msg[msg_kind] += 1;
}

static __always_inline void count_qfi(__u32 point, __u32 slice_id, __u32 qfi, __u32 dir,
				      __u64 bytes)
{
	if (point > SAURON_POINT_N3_EGRESS || qfi >= SAURON_MAX_QFI)
		return;
	__u32 key = ((slice_id * SAURON_GTP_POINTS + point) * SAURON_MAX_QFI + qfi) * SAURON_DIRS + dir;
	struct sauron_traffic *t = qfi_stats.lookup(&key);
	if (!t)
		return;
	t->packets += 1;
	t->bytes += bytes;
}

static __always_inline void count_session(struct sauron_session_stats *s, __u32 dir, __u64 bytes,
					  __u32 qfi)
{
	s->packets[dir & 1] += 1;
	s->bytes[dir & 1] += bytes;
	s->qfi = qfi;
}

/* A session entry that is missing or classified under older rules. */
static __always_inline void refresh_session(struct sauron_session_stats *s, __u32 slice_id,
					    __u32 generation, const __u8 ue_addr[16], int has_ue)
{
	s->slice_id = slice_id;
	s->rules_generation = generation;
	s->flags = has_ue ? SAURON_SESSION_HAS_UE : 0;
	__builtin_memcpy(s->ue_addr, ue_addr, 16);
}

/* Counts straight into teid_stats (replay's AUTO mode, which decides the
 * direction per frame and so keeps no slot). */
static __always_inline void count_teid_session(__u32 teid, __u32 slice_id, __u32 generation,
					       __u32 dir, __u64 bytes, __u32 qfi,
					       const __u8 ue_addr[16], int has_ue)
{
	struct sauron_session_stats *s = teid_stats.lookup(&teid);
	struct sauron_session_stats fresh = {};

	if (!s)
		s = &fresh;
	refresh_session(s, slice_id, generation, ue_addr, has_ue);
	count_session(s, dir, bytes, qfi);
	if (s == &fresh)
		teid_stats.update(&teid, &fresh);
}

static __always_inline __u32 teid_slot_index(__u32 teid)
{
	/* Fibonacci hashing: sequentially allocated TEIDs spread over slots */
	return (teid * 2654435761u) >> (32 - SAURON_TEID_SLOT_BITS);
}

/* Moves a slot's counts into its TEID's teid_stats entry. */
static __always_inline void flush_teid_slot(struct sauron_teid_slot *slot)
{
	__u32 teid = slot->teid;
	struct sauron_session_stats *s = teid_stats.lookup(&teid);
	struct sauron_session_stats fresh = {};

	if (!s)
		s = &fresh;
	s->packets[0] += slot->packets[0];
	s->packets[1] += slot->packets[1];
	s->bytes[0] += slot->bytes[0];
	s->bytes[1] += slot->bytes[1];
	s->slice_id = slot->slice_id;
	s->rules_generation = slot->rules_generation;
	s->qfi = slot->qfi;
	s->flags = slot->flags & SAURON_SESSION_HAS_UE;
	__builtin_memcpy(s->ue_addr, slot->ue_addr, 16);
	if (s == &fresh)
		teid_stats.update(&teid, &fresh);
}

static __always_inline void fill_teid_slot(struct sauron_teid_slot *slot, __u32 teid,
					   __u32 slice_id, __u32 generation,
					   const __u8 ue_addr[16], int has_ue)
{
	slot->teid = teid;
	slot->slice_id = slice_id;
	slot->rules_generation = generation;
	slot->flags = SAURON_SESSION_VALID | (has_ue ? SAURON_SESSION_HAS_UE : 0);
	slot->packets[0] = 0;
	slot->packets[1] = 0;
	slot->bytes[0] = 0;
	slot->bytes[1] = 0;
	__builtin_memcpy(slot->ue_addr, ue_addr, 16);
}

static __always_inline const struct sauron_config *agent_config(void)
{
	__u32 zero = 0;
	return config.lookup(&zero);
}

#endif /* SAURON_LIB_ACCOUNT_H */
