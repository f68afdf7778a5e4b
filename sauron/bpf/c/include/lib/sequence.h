/* Loss from GTP-U sequence numbers (S flag), per tunnel and direction: the
 * highest number seen and a window of the 64 before it tell a gap (loss)
 * from a late packet (reordering, which takes its loss back) and from a
 * copy (duplicate). Gap sizes go to a per-slice histogram of loss bursts; a
 * late packet that falls into the most recent gap splits it there. */
#ifndef SAURON_LIB_SEQUENCE_H
#define SAURON_LIB_SEQUENCE_H

#include "sauron_shared.h"
#include "lib/histogram.h"
#include "lib/measure.h"

SAURON_KEPT_TABLE("lru_hash", struct sauron_seq_key, struct sauron_seq_state, seq_state,
		  SAURON_SEQ_ENTRIES, 0);

static __always_inline void gap_add(struct sauron_measure_stats *m, __u32 gap, __s64 delta)
{
	if (gap == 0)
		return;
	__u32 b = gap_bucket(gap);
	if (b < SAURON_GAP_BUCKETS)
		m->seq_gaps[b] += delta;
}

static __always_inline void seq_restart(struct sauron_seq_state *st, __u32 seq)
{
	st->expected = (seq + 1) & 0xffff;
	st->window = 1;
	st->gap_length = 0;
}

static __always_inline void seq_ahead(struct sauron_seq_state *st, struct sauron_measure_stats *m,
				      __u32 seq, __u32 gap)
{
	__u32 shift = gap + 1;
	st->window = shift >= SAURON_SEQ_WINDOW ? 1 : (st->window << shift) | 1;
	if (gap) {
		st->lost += gap;
		m->seq_lost += gap;
		gap_add(m, gap, 1);
		st->gap_start = st->expected;
		st->gap_length = gap;
	}
	st->expected = (seq + 1) & 0xffff;
	st->received += 1;
	m->seq_received += 1;
}

/* A number below the expected one: behind = how far below, from 1. */
static __always_inline void seq_behind(struct sauron_seq_state *st, struct sauron_measure_stats *m,
				       __u32 seq, __u32 behind)
{
	__u32 bit = behind - 1;
	if (bit < SAURON_SEQ_WINDOW && (st->window >> bit) & 1) {
		st->duplicates += 1;
		m->seq_duplicates += 1;
		return;
	}
	if (bit < SAURON_SEQ_WINDOW)
		st->window |= 1ULL << bit;
	st->reordered += 1;
	m->seq_reordered += 1;
	st->received += 1;
	m->seq_received += 1;
	if (st->lost) {
		st->lost -= 1;
		m->seq_lost -= 1;
	}
	__u32 into = (seq - st->gap_start) & 0xffff;
	if (st->gap_length && into < st->gap_length) {
		/* the burst it belonged to is two shorter ones now */
		__u32 after = st->gap_length - into - 1;
		gap_add(m, st->gap_length, -1);
		gap_add(m, into, 1);
		gap_add(m, after, 1);
		st->gap_start = (seq + 1) & 0xffff;
		st->gap_length = after;
	}
}

static __always_inline void track_sequence(const struct sauron_config *cfg, __u32 teid,
					   const __u8 receiver[16], __u32 seq, __u32 slice_id,
					   __u32 dir)
{
	if (!measuring(cfg, SAURON_MEASURE_SEQUENCE))
		return;
	struct sauron_measure_stats *m = measure_of(slice_id, dir);
	if (!m)
		return;
	struct sauron_seq_key key = { .teid = teid, .direction = dir & 1 };
	__builtin_memcpy(key.receiver, receiver, 16);
	struct sauron_seq_state *st = seq_state.lookup(&key);
	seq &= 0xffff;
	if (!st) {
		struct sauron_seq_state fresh = { .received = 1, .slice_id = slice_id };
		seq_restart(&fresh, seq);
		seq_state.update(&key, &fresh);
		m->seq_received += 1;
		return;
	}
	st->slice_id = slice_id;
	__u32 ahead = (seq - st->expected) & 0xffff;
	if (ahead <= SAURON_SEQ_MAX_DROPOUT) {
		seq_ahead(st, m, seq, ahead);
		return;
	}
	__u32 behind = (st->expected - seq) & 0xffff;
	if (behind <= SAURON_SEQ_MAX_MISORDER) {
		seq_behind(st, m, seq, behind);
		return;
	}
	seq_restart(st, seq);
	st->received += 1;
	m->seq_received += 1;
	m->seq_resyncs += 1;
}

#endif /* SAURON_LIB_SEQUENCE_H */
