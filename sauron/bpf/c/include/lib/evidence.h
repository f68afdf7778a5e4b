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

static __always_inline void keep_evidence(const struct measure_job *job, void *data, void *data_end)
{
	if (!job->evidence || !slice_wants_evidence(job->slice_id))
		return;
	struct sauron_evidence *e = evidence_ring.ringbuf_reserve(sizeof(struct sauron_evidence));
	if (!e) {
		__u32 zero = 0;
		__u64 *missed = evidence_missed.lookup(&zero);
		if (missed)
			*missed += 1;
		return;
	}
	__u64 linear = data_end - data;
	__u32 captured = linear < SAURON_EVIDENCE_SNAPLEN ? linear : SAURON_EVIDENCE_SNAPLEN;
	if (bpf_probe_read_kernel(e->data, captured, data) < 0)
		captured = 0;
	e->time_ns = bpf_ktime_get_ns();
	e->frame_len = job->frame_len;
	e->slice_id = job->slice_id;
	e->teid = job->teid;
	e->captured = captured;
	e->point = job->point;
	e->direction = job->direction;
	evidence_ring.ringbuf_submit(e, 0);
}

#endif /* SAURON_LIB_EVIDENCE_H */
