/* Frees the transit stamps the agent found past their expiry, counting each
 * lost. Never attached: the agent runs it with BPF_PROG_TEST_RUN on a frame
 * of (slot index, state read) pairs, so that freeing races the data path
 * under the same compare-and-swap rule as a match. */
#include "lib/transit.h"

int sauron_transit_expire(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	transit_expire(data, data_end);
	return XDP_PASS;
}
