/* N3/N9 egress (TC clsact, direct action): GTP-U the UPF sends to the gNB. */
#include "lib/pipeline.h"
#include "lib/skb.h"

int sauron_n3_egress(struct __sk_buff *skb)
{
	pull_headers(skb);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	sauron_gtpu_frame(data, data_end, skb->len, SAURON_POINT_N3_EGRESS, SAURON_LINK_ETHERNET);
	if (measure_pending_tc(skb, SAURON_POINT_N3_EGRESS))
		measure_tc_prog.call(skb, SAURON_POINT_N3_EGRESS);
	return SAURON_TC_PASS;
}
