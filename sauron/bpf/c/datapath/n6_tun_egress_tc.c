/* N6 egress on the UPF's own TUN or GTP device (TC clsact ingress, direct
 * action): what the device receives, the UPF wrote towards the data
 * network. No link-layer header: the frame starts at IP. */
#include "lib/pipeline.h"
#include "lib/skb.h"

int sauron_n6_tun_egress_tc(struct __sk_buff *skb)
{
	pull_headers(skb);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	sauron_ip_frame(data, data_end, skb->len, SAURON_POINT_N6_EGRESS, SAURON_LINK_BARE_IP);
	if (measure_pending_tc(skb, SAURON_POINT_N6_EGRESS))
		measure_tc_prog.call(skb, SAURON_POINT_N6_EGRESS);
	return SAURON_TC_PASS;
}
