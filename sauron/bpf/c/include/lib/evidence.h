/* Evidence: while a slice is diagnosed, the first bytes of each of its
 * GTP-U frames (outer and inner headers) go to a ring buffer the agent
 * drains into a pcapng per violation. Run by the measurement programs, and
 * only for frames the counting program flagged: with no slice diagnosed
 * (SAURON_MEASURE_EVIDENCE off) no frame costs anything here. */
#ifndef SAURON_LIB_EVIDENCE_H
#define SAURON_LIB_EVIDENCE_H

#include "sauron_shared.h"
#include "lib/measure.h"

BPF_RINGBUF_OUTPUT(evidence_ring, SAURON_EVIDENCE_RING_PAGES);
/* frames that found the ring full, per CPU */
BPF_PERCPU_ARRAY(evidence_missed, __u64, 1);

static __always_inline int slice_wants_evidence(__u32 slice_id)
{
	__u32 index = slice_id % SAURON_MAX_SLICES;
	struct sauron_slice_config *sc = slice_config.lookup(&index);
	return sc && (sc->flags & SAURON_SLICE_EVIDENCE);
}

/* The job of a frame whose head is wanted, and its record reserved; NULL
 * when the frame is not a diagnosed slice's (or the ring is full). */
static __always_inline struct sauron_evidence *evidence_record(__u32 point)
{
	__u32 zero = 0;
	struct measure_job *job = measure_jobs.lookup(&zero);
	if (!job || job->point != point || !job->evidence || !slice_wants_evidence(job->slice_id))
		return NULL;
	struct sauron_evidence *e = evidence_ring.ringbuf_reserve(sizeof(struct sauron_evidence));
	if (!e) {
		__u64 *missed = evidence_missed.lookup(&zero);
		if (missed)
			*missed += 1;
		return NULL;
	}
	e->time_ns = bpf_ktime_get_ns();
	e->frame_len = job->frame_len;
	e->slice_id = job->slice_id;
	e->teid = job->teid;
	e->point = job->point;
	e->direction = job->direction;
	e->captured = 0;
	return e;
}

_Static_assert((SAURON_EVIDENCE_SNAPLEN & (SAURON_EVIDENCE_SNAPLEN - 1)) == 0,
	       "the snap length is masked: a power of two");

/* At most SNAPLEN bytes, at least one: what the load helpers accept, in a
 * form the verifier can bound (the value hidden from the compiler, then
 * masked: 1 + (n - 1) mod SNAPLEN, n itself for n in 1..SNAPLEN). */
static __always_inline __u32 evidence_length(__u64 frame_len)
{
	__u32 captured = frame_len < SAURON_EVIDENCE_SNAPLEN ? frame_len : SAURON_EVIDENCE_SNAPLEN;
	if (!captured)
		captured = 1;
	asm volatile("" : "+r"(captured));
	return ((captured - 1) & (SAURON_EVIDENCE_SNAPLEN - 1)) + 1;
}

/* The helpers that copy from the frame itself: no program type needs more
 * than the capabilities the data path has (bpf_probe_read_kernel would
 * need CAP_PERFMON). */
static __always_inline void keep_evidence_xdp(struct xdp_md *ctx, __u32 point)
{
	struct sauron_evidence *e = evidence_record(point);
	if (!e)
		return;
	__u32 captured = evidence_length(ctx->data_end - ctx->data);
	if (bpf_xdp_load_bytes(ctx, 0, e->data, captured) == 0)
		e->captured = captured;
	evidence_ring.ringbuf_submit(e, 0);
}

static __always_inline void keep_evidence_tc(struct __sk_buff *skb, __u32 point)
{
	struct sauron_evidence *e = evidence_record(point);
	if (!e)
		return;
	__u32 captured = evidence_length(skb->len);
	if (bpf_skb_load_bytes(skb, 0, e->data, captured) == 0)
		e->captured = captured;
	evidence_ring.ringbuf_submit(e, 0);
}

#endif /* SAURON_LIB_EVIDENCE_H */
