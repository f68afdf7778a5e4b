/* Per-slice measurement counters and settings shared by the transit, RTT,
 * sequence and retransmission code, and the hand-over from the counting
 * programs to the measurement programs.
 *
 * Measuring runs in programs of its own, reached by a tail call once the
 * counting is done: verified apart, neither multiplies the paths of the
 * other, and with measuring off the counting programs never pay for it. */
#ifndef SAURON_LIB_MEASURE_H
#define SAURON_LIB_MEASURE_H

#include "sauron_shared.h"
#include "lib/histogram.h"
#include "lib/parse.h"
#include "lib/kept.h"

SAURON_KEPT_TABLE("percpu_array", int, struct sauron_measure_stats, measure_stats,
		  SAURON_MAX_SLICES *SAURON_DIRS, 0);
SAURON_KEPT_TABLE("percpu_array", int, struct sauron_latency_hist, latency_hist,
		  SAURON_MAX_SLICES *SAURON_LAT_METRICS *SAURON_DIRS, 0);
SAURON_KEPT_TABLE("array", int, struct sauron_slice_config, slice_config, SAURON_MAX_SLICES, 0);

struct measure_job {
	__u32 pending; /* set by the counting program, cleared by the entry */
	__u32 point;
	__u32 slice_id;
	__u32 direction;
	__u32 msg_kind;
	__u32 teid;
	__u32 seq;
	__u32 gtp_flags;
	__u32 has_ip;	    /* the user's IP packet parsed */
	__u32 ip_offset;    /* where it starts (inner on N3; 0 on a bare IP link) */
	__u32 outer_offset; /* the outer IP header of a GTP-U frame */
	__u32 frame_len;
	__u32 evidence; /* a GTP-U frame while some slice is diagnosed (lib/evidence.h) */
	__u32 security; /* an uplink G-PDU the checks must see (lib/security.h) */
	__u32 teid_known;
};

BPF_PERCPU_ARRAY(measure_jobs, struct measure_job, 1);
/* by attach point: the measurement program for the caller's hook and point */
BPF_PROG_ARRAY(measure_xdp_prog, SAURON_POINTS);
BPF_PROG_ARRAY(measure_tc_prog, SAURON_POINTS);

static __always_inline struct sauron_measure_stats *measure_of(__u32 slice_id, __u32 dir)
{
	__u32 key = (slice_id % SAURON_MAX_SLICES) * SAURON_DIRS + (dir & 1);
	return measure_stats.lookup(&key);
}

static __always_inline void record_latency(__u32 metric, __u32 slice_id, __u32 dir, __u64 ns)
{
	__u32 key = ((slice_id % SAURON_MAX_SLICES) * SAURON_LAT_METRICS + metric) * SAURON_DIRS +
		    (dir & 1);
	struct sauron_latency_hist *h = latency_hist.lookup(&key);
	if (h)
		hist_record(h, ns);
}

/* The latest transit sample per slice and direction on this CPU, plus one
 * (0: none yet): jitter is the difference between consecutive samples. */
SAURON_KEPT_TABLE("percpu_array", int, __u64, transit_last, SAURON_MAX_SLICES *SAURON_DIRS, 0);

/* A transit sample, and its difference from the one before it. */
static __always_inline void record_transit(__u32 slice_id, __u32 dir, __u64 ns)
{
	__u32 key = (slice_id % SAURON_MAX_SLICES) * SAURON_DIRS + (dir & 1);
	__u64 *last = transit_last.lookup(&key);

	record_latency(SAURON_LAT_TRANSIT, slice_id, dir, ns);
	if (!last)
		return;
	if (*last) {
		__u64 previous = *last - 1;
		record_latency(SAURON_LAT_TRANSIT_JITTER, slice_id, dir,
			       ns > previous ? ns - previous : previous - ns);
	}
	*last = ns + 1;
}

static __always_inline int measuring(const struct sauron_config *cfg, __u32 what)
{
	return cfg && (cfg->measure & what);
}

#endif /* SAURON_LIB_MEASURE_H */
