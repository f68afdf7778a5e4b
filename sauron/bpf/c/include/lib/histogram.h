/* Log-linear histogram buckets (geometry in sauron_shared.h), computed
 * without loops: floor(log2) by binary search over the bits. */
#ifndef SAURON_LIB_HISTOGRAM_H
#define SAURON_LIB_HISTOGRAM_H

#include "sauron_shared.h"

static __always_inline __u32 floor_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1) {
		r += 1;
	}
	return r;
}

/* The bucket of v for a geometry [2^min_shift, 2^max_shift). */
static __always_inline __u32 log_linear_bucket(__u64 v, __u32 min_shift, __u32 max_shift)
{
	if (v < (1ULL << min_shift))
		return 0;
	if (v >= (1ULL << max_shift))
		return (max_shift - min_shift) * SAURON_HIST_SUB_BUCKETS + 1;
	__u32 k = floor_log2(v);
	/* v << SUB_BITS >> k lies in [SUB_BUCKETS, 2 * SUB_BUCKETS) */
	__u32 sub = ((v << SAURON_HIST_SUB_BITS) >> k) & (SAURON_HIST_SUB_BUCKETS - 1);
	return 1 + (k - min_shift) * SAURON_HIST_SUB_BUCKETS + sub;
}

static __always_inline __u32 latency_bucket(__u64 ns)
{
	return log_linear_bucket(ns, SAURON_LATENCY_MIN_SHIFT, SAURON_LATENCY_MAX_SHIFT);
}

static __always_inline __u32 gap_bucket(__u64 gap)
{
	return log_linear_bucket(gap, SAURON_GAP_MIN_SHIFT, SAURON_GAP_MAX_SHIFT);
}

static __always_inline void hist_record(struct sauron_latency_hist *h, __u64 ns)
{
	__u32 b = latency_bucket(ns);

	h->count += 1;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	if (b < SAURON_LATENCY_BUCKETS)
		h->buckets[b] += 1;
}

#endif /* SAURON_LIB_HISTOGRAM_H */
