/* Measurements for frames seen by the TC entry points (N3 and N6 egress),
 * reached by tail call from them; the caller has pulled the headers. */
#include <linux/pkt_cls.h>
#include "lib/measurement.h"

int sauron_measure_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	run_measurement(data, data_end);
	return TC_ACT_OK;
}
