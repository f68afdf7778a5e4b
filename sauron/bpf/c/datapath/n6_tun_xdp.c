/* N6 egress on the UPF's own TUN or GTP device (XDP): the frames the device
 * receives are the ones the UPF writes, decapsulated, towards the data
 * network. No link-layer header: the frame starts at IP. */
#include "lib/pipeline.h"

int sauron_n6_tun_egress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	sauron_ip_frame(data, data_end, data_end - data, SAURON_POINT_N6_EGRESS,
			SAURON_LINK_BARE_IP);
	if (measure_pending_xdp(ctx, SAURON_POINT_N6_EGRESS))
		measure_xdp_prog.call(ctx, SAURON_POINT_N6_EGRESS);
	return XDP_PASS;
}
