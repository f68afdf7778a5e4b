/* TC programs see socket buffers whose headers may sit outside the linear
 * area; pulling them in moves no byte of the packet, it only makes them
 * readable with direct packet access. */
#ifndef SAURON_LIB_SKB_H
#define SAURON_LIB_SKB_H

#include <linux/pkt_cls.h>

/* Enough for Ethernet, two tags, IPv6 with extensions, UDP, GTP-U with its
 * extension chain and the inner headers. */
#define SAURON_TC_PULL_BYTES 512

/* What every TC program returns: no verdict of its own, so the filters
 * after it on the hook still run and the frame passes when none is left. */
#define SAURON_TC_PASS TC_ACT_UNSPEC

static __always_inline void pull_headers(struct __sk_buff *skb)
{
	__u32 want = skb->len < SAURON_TC_PULL_BYTES ? skb->len : SAURON_TC_PULL_BYTES;
	if (skb->data_end - skb->data < want)
		bpf_skb_pull_data(skb, want);
}

#endif /* SAURON_LIB_SKB_H */
