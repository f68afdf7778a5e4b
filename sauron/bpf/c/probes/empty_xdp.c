/* Baselines for the benchmarks: the same program types doing nothing, so a
 * benchmark can subtract the cost of running any program at all, and a sink
 * that discards every frame at the driver, for a traffic generator's own
 * ceiling. None of these is ever attached by the agent. */
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

int empty_tc(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}

int discard_xdp(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* The clock a transit stamp reads, once and nine times, into a sink the
 * compiler cannot drop: eight reads apart is what one costs. */
BPF_ARRAY(clock_sink, __u64, 1);

static __always_inline int read_clock(int times)
{
	__u32 zero = 0;
	__u64 *sink = clock_sink.lookup(&zero);
	if (!sink)
		return XDP_PASS;
#pragma unroll
	for (int i = 0; i < times; i++)
		*sink += bpf_ktime_get_ns();
	return XDP_PASS;
}

int clock_once_xdp(struct xdp_md *ctx)
{
	return read_clock(1);
}

int clock_nine_xdp(struct xdp_md *ctx)
{
	return read_clock(9);
}
