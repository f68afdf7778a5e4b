/* The smallest useful program: counts frames and bytes per ethertype class.
 * `sauron doctor` compiles it to prove bcc and the kernel headers work, and
 * the harness tests run it to prove the test machinery works. */
#include <linux/if_ether.h>

enum frame_class {
	FRAME_SHORT = 0, /* shorter than an Ethernet header */
	FRAME_IPV4 = 1,
	FRAME_IPV6 = 2,
	FRAME_OTHER = 3,
	FRAME_CLASSES = 4,
};

struct frame_count {
	__u64 frames;
	__u64 bytes;
};

BPF_ARRAY(frame_counts, struct frame_count, FRAME_CLASSES);

static __always_inline void count_frame(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	__u32 cls = FRAME_SHORT;

	if ((void *)(eth + 1) <= data_end) {
		if (eth->h_proto == bpf_htons(ETH_P_IP))
			cls = FRAME_IPV4;
		else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
			cls = FRAME_IPV6;
		else
			cls = FRAME_OTHER;
	}
	struct frame_count *c = frame_counts.lookup(&cls);
	if (c) {
		__sync_fetch_and_add(&c->frames, 1);
		__sync_fetch_and_add(&c->bytes, data_end - data);
	}
}

int count_xdp(struct xdp_md *ctx)
{
	count_frame((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	return XDP_PASS;
}

int count_tc(struct __sk_buff *skb)
{
	count_frame((void *)(long)skb->data, (void *)(long)skb->data_end);
	return 0; /* TC_ACT_OK */
}
