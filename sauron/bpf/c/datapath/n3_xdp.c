/* N3/N9 ingress (XDP): GTP-U arriving from the gNB or a peer UPF. */
#include "lib/pipeline.h"

int sauron_n3_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	sauron_gtpu_frame(data, data_end, data_end - data, SAURON_POINT_N3_INGRESS,
			  SAURON_LINK_ETHERNET);
	if (measure_pending_xdp(ctx, SAURON_POINT_N3_INGRESS))
		measure_xdp_prog.call(ctx, SAURON_POINT_N3_INGRESS);
	return XDP_PASS;
}
