/* N3/N9 ingress (TC clsact, direct action): GTP-U arriving from the gNB or a
 * peer UPF, for links where TC ingress costs less than generic XDP. */
#include "lib/pipeline.h"
#include "lib/skb.h"

int sauron_n3_ingress_tc(struct __sk_buff *skb)
{
	pull_headers(skb);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	sauron_gtpu_frame(data, data_end, skb->len, SAURON_POINT_N3_INGRESS, SAURON_LINK_ETHERNET);
	if (measure_pending_tc(skb, SAURON_POINT_N3_INGRESS))
		measure_tc_prog.call(skb, SAURON_POINT_N3_INGRESS);
	return SAURON_TC_PASS;
}
