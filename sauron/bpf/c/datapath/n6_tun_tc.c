/* N6 ingress on the UPF's own TUN or GTP device (TC clsact, direct action):
 * the frames the device sends go to the UPF, from the data network. No
 * link-layer header: the frame starts at IP. */
#include "lib/pipeline.h"
#include "lib/skb.h"

int sauron_n6_tun_ingress(struct __sk_buff *skb)
{
	pull_headers(skb);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	sauron_ip_frame(data, data_end, skb->len, SAURON_POINT_N6_INGRESS, SAURON_LINK_BARE_IP);
	if (measure_pending_tc(skb, SAURON_POINT_N6_INGRESS))
		measure_tc_prog.call(skb, SAURON_POINT_N6_INGRESS);
	return SAURON_TC_PASS;
}
