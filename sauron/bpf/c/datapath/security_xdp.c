/* The security checks of uplink G-PDUs seen by the XDP entry point at N3/N9
 * ingress, reached by tail call from its measurement program. */
#include "lib/measurement.h"

int sauron_security_xdp_n3_ingress(struct xdp_md *ctx)
{
	run_security((void *)(long)ctx->data, (void *)(long)ctx->data_end, SAURON_POINT_N3_INGRESS);
	return XDP_PASS;
}
