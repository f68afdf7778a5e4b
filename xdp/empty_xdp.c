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
