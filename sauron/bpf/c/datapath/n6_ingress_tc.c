/* N6 ingress (TC clsact, direct action): plain IP arriving from the data
 * network, for links where TC ingress costs less than generic XDP. */
#include "lib/pipeline.h"
#include "lib/skb.h"

int sauron_n6_ingress_tc(struct __sk_buff *skb)
{
	pull_headers(skb);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	sauron_ip_frame(data, data_end, skb->len, SAURON_POINT_N6_INGRESS, SAURON_LINK_ETHERNET);
	if (measure_pending_tc(skb, SAURON_POINT_N6_INGRESS))
		measure_tc_prog.call(skb, SAURON_POINT_N6_INGRESS);
	return SAURON_TC_PASS;
}
