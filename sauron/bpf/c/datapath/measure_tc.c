/* Measurements for frames seen by the TC entry points, one program per
 * attach point, reached by tail call from them (index: the point); the
 * caller has pulled the headers. */
#include "lib/measurement.h"
#include "lib/skb.h"

int sauron_measure_tc_n3_ingress(struct __sk_buff *skb)
{
	keep_evidence_tc(skb, SAURON_POINT_N3_INGRESS);
	run_measurement((void *)(long)skb->data, (void *)(long)skb->data_end,
			SAURON_POINT_N3_INGRESS);
	if (security_pending(SAURON_POINT_N3_INGRESS))
		security_tc_prog.call(skb, SAURON_POINT_N3_INGRESS);
	return SAURON_TC_PASS;
}

int sauron_measure_tc_n3_egress(struct __sk_buff *skb)
{
	keep_evidence_tc(skb, SAURON_POINT_N3_EGRESS);
	run_measurement((void *)(long)skb->data, (void *)(long)skb->data_end,
			SAURON_POINT_N3_EGRESS);
	return SAURON_TC_PASS;
}

int sauron_measure_tc_n6_ingress(struct __sk_buff *skb)
{
	run_measurement((void *)(long)skb->data, (void *)(long)skb->data_end,
			SAURON_POINT_N6_INGRESS);
	return SAURON_TC_PASS;
}

int sauron_measure_tc_n6_egress(struct __sk_buff *skb)
{
	run_measurement((void *)(long)skb->data, (void *)(long)skb->data_end,
			SAURON_POINT_N6_EGRESS);
	return SAURON_TC_PASS;
}
