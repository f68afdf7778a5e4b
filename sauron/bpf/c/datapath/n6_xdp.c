/* N6 ingress (XDP): plain IP arriving from the data network. */
#include "lib/pipeline.h"

int sauron_n6_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	sauron_ip_frame(data, data_end, data_end - data, SAURON_POINT_N6_INGRESS,
			SAURON_LINK_ETHERNET);
	if (measure_pending_xdp(ctx, SAURON_POINT_N6_INGRESS))
		measure_xdp_prog.call(ctx, SAURON_POINT_N6_INGRESS);
	return XDP_PASS;
}
