/* Test probe: the buckets the data path computes for the 64-bit value at the
 * start of the frame, so tests can hold the C geometry against the Python
 * one. */
#include "lib/histogram.h"

/* out[0]: latency bucket in the low 32 bits, gap bucket in the high 32 */
BPF_ARRAY(probe_out, __u64, 1);

int histogram_probe(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 *v = data;
	__u32 zero = 0;

	if ((void *)(v + 1) > data_end)
		return XDP_PASS;
	__u64 value = *v;
	__u64 buckets = ((__u64)gap_bucket(value) << 32) | latency_bucket(value);
	probe_out.update(&zero, &buckets);
	return XDP_PASS;
}
