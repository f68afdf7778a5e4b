/* The security checks of uplink G-PDUs seen by the TC entry point at N3/N9
 * ingress, reached by tail call from its measurement program; the caller
 * has pulled the headers. */
#include "lib/measurement.h"
#include "lib/skb.h"

int sauron_security_tc_n3_ingress(struct __sk_buff *skb)
{
	run_security((void *)(long)skb->data, (void *)(long)skb->data_end, SAURON_POINT_N3_INGRESS);
	return SAURON_TC_PASS;
}
