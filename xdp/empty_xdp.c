/* Baselines for per-packet cost: the same program types doing nothing, so a
 * benchmark can subtract the cost of running any program at all. */
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

int empty_tc(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}
