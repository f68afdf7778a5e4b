/* N6 egress (TC clsact, direct action): decapsulated IP the UPF sends to the
 * data network. */
#include "lib/pipeline.h"
#include "lib/skb.h"

int sauron_n6_egress(struct __sk_buff *skb)
{
	pull_headers(skb);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	sauron_ip_frame(data, data_end, skb->len, SAURON_POINT_N6_EGRESS, SAURON_LINK_ETHERNET);
	if (measure_pending_tc(skb, SAURON_POINT_N6_EGRESS))
		measure_tc_prog.call(skb, SAURON_POINT_N6_EGRESS);
	return SAURON_TC_PASS;
}
