/* Socket filter for the agent's N4 watch: an AF_PACKET socket (SOCK_DGRAM,
 * so the packet starts at its network header) keeps only UDP datagrams to or
 * from the PFCP port, whole; everything else never reaches user space. A
 * later IPv4 fragment carries no ports and is not kept. */
#include <linux/if_ether.h>
#include <linux/in.h>

#define PFCP_PORT 8805
#define KEEP_WHOLE 0xffffffff
#define DROP 0

int sauron_pfcp_filter(struct __sk_buff *skb)
{
	__u32 l4;
	__u8 proto;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 version_ihl;
		__u16 frag;
		if (bpf_skb_load_bytes(skb, 0, &version_ihl, 1) < 0 ||
		    bpf_skb_load_bytes(skb, 9, &proto, 1) < 0 ||
		    bpf_skb_load_bytes(skb, 6, &frag, 2) < 0)
			return DROP;
		if (bpf_ntohs(frag) & 0x1fff)
			return DROP;
		l4 = (version_ihl & 0x0f) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 6, &proto, 1) < 0)
			return DROP;
		l4 = 40;
	} else {
		return DROP;
	}
	if (proto != IPPROTO_UDP)
		return DROP;
	__be16 ports[2];
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0)
		return DROP;
	if (ports[0] == bpf_htons(PFCP_PORT) || ports[1] == bpf_htons(PFCP_PORT))
		return KEEP_WHOLE;
	return DROP;
}
