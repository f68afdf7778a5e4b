/* Measurements for frames seen by the XDP entry points (N3 and N6 ingress),
 * reached by tail call from them. */
#include "lib/measurement.h"

int sauron_measure_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	run_measurement(data, data_end);
	return XDP_PASS;
}
