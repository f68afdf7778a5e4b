/* Measurements for frames seen by the XDP entry points, one program per
 * attach point, reached by tail call from them (index: the point). */
#include "lib/measurement.h"

int sauron_measure_xdp_n3_ingress(struct xdp_md *ctx)
{
	keep_evidence_xdp(ctx, SAURON_POINT_N3_INGRESS);
	run_measurement((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			SAURON_POINT_N3_INGRESS);
	if (security_pending(SAURON_POINT_N3_INGRESS))
		security_xdp_prog.call(ctx, SAURON_POINT_N3_INGRESS);
	return XDP_PASS;
}

int sauron_measure_xdp_n6_ingress(struct xdp_md *ctx)
{
	run_measurement((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			SAURON_POINT_N6_INGRESS);
	return XDP_PASS;
}

/* on the UPF's own device, whose receiving side is N6 egress */
int sauron_measure_xdp_n6_egress(struct xdp_md *ctx)
{
	run_measurement((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			SAURON_POINT_N6_EGRESS);
	return XDP_PASS;
}
