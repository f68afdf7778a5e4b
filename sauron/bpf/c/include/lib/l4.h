/* What the measurements need from the transport header of the user's packet
 * (inner on N3, plain on N6): TCP sequence, acknowledgment, flags and
 * timestamps; ICMP echo sequence; the first payload words of anything else.
 * Read once, into a struct on the stack, so that the code after it works on
 * values and not on packet pointers. */
#ifndef SAURON_LIB_L4_H
#define SAURON_LIB_L4_H

#include <linux/tcp.h>
#include "sauron_shared.h"
#include "lib/parse.h"

#define TCP_FLAG_FIN_BIT 0x01
#define TCP_FLAG_SYN_BIT 0x02
#define TCP_FLAG_RST_BIT 0x04
#define TCP_FLAG_ACK_BIT 0x10

#define TCPOPT_END 0
#define TCPOPT_NOP 1
#define TCPOPT_TIMESTAMP 8
#define TCPOLEN_TIMESTAMP 10
/* options are at most 40 bytes: at most 10 of them before a timestamp */
#define SAURON_MAX_TCP_OPTIONS 10

#define ICMP_ECHO_REQUEST_TYPE 8
#define ICMP_ECHO_REPLY_TYPE 0
#define ICMPV6_ECHO_REQUEST_TYPE 128
#define ICMPV6_ECHO_REPLY_TYPE 129

struct l4_facts {
	__u8 ok; /* the transport header was read */
	__u8 proto;
	__u8 tcp_flags;
	__u8 has_ts;
	__u16 sport;
	__u16 dport;
	__u32 word_a; /* fingerprint words, see struct sauron_fingerprint */
	__u32 word_b;
	__u32 tcp_seq;
	__u32 tcp_ack;
	__u32 tcp_payload; /* bytes after the TCP header */
	__u32 tsval;
	__u32 tsecr;
	__u32 unused; /* whole 8-byte words (struct ip_view) */
} __attribute__((aligned(8)));

/* Up to two 32-bit words at p, zeros for the bytes the packet lacks. */
static __always_inline void payload_words(__u8 *p, void *data_end, __u32 *a, __u32 *b)
{
	if ((void *)(p + 4) <= data_end)
		*a = bpf_ntohl(*(__be32 *)p);
	if ((void *)(p + 8) <= data_end)
		*b = bpf_ntohl(*(__be32 *)(p + 4));
}

/* The TCP timestamp option, found by walking the options by their lengths. */
static __always_inline void tcp_timestamps(struct tcphdr *th, __u32 opt_len, void *data_end,
					   struct l4_facts *t)
{
	__u8 *opts = (__u8 *)(th + 1);
	__u32 off = 0;

	for (int i = 0; i < SAURON_MAX_TCP_OPTIONS; i++) {
		if (off >= opt_len || off > 38)
			return;
		__u8 *p = opts + (off & 0x3f);
		if ((void *)(p + 2) > data_end)
			return;
		__u8 kind = p[0];
		if (kind == TCPOPT_END)
			return;
		if (kind == TCPOPT_NOP) {
			off += 1;
			continue;
		}
		__u8 len = p[1];
		if (len < 2)
			return;
		if (kind == TCPOPT_TIMESTAMP) {
			if (len != TCPOLEN_TIMESTAMP || off + TCPOLEN_TIMESTAMP > opt_len ||
			    (void *)(p + TCPOLEN_TIMESTAMP) > data_end)
				return;
			t->tsval = bpf_ntohl(*(__be32 *)(p + 2));
			t->tsecr = bpf_ntohl(*(__be32 *)(p + 6));
			t->has_ts = 1;
			return;
		}
		off += len;
	}
}

/* What a transit fingerprint needs: ports and the two words, no TCP
 * options (the entry programs stamp with this; the walk stays in the
 * measurement programs). c stands on the transport header of the packet ip
 * describes; returns the TCP header length, else 0. */
static __always_inline __u32 read_l4_words(struct hdr_cursor *c, void *data_end,
					   const struct ip_view *ip, struct l4_facts *t)
{
	t->proto = ip->proto;
	if (ip->later_fragment)
		return 0;
	if (ip->proto == IPPROTO_TCP) {
		struct tcphdr *th = c->pos;
		if ((void *)(th + 1) > data_end)
			return 0;
		__u32 hlen = th->doff * 4;
		if (hlen < sizeof(*th))
			return 0;
		t->ok = 1;
		t->sport = bpf_ntohs(th->source);
		t->dport = bpf_ntohs(th->dest);
		t->tcp_seq = bpf_ntohl(th->seq);
		t->tcp_ack = bpf_ntohl(th->ack_seq);
		t->tcp_flags = ((__u8 *)th)[13];
		t->tcp_payload = ip->payload_len > hlen ? ip->payload_len - hlen : 0;
		t->word_a = t->tcp_seq;
		t->word_b = t->tcp_ack;
		return hlen;
	} else if (ip->proto == IPPROTO_UDP) {
		struct udphdr *uh = c->pos;
		if ((void *)(uh + 1) > data_end)
			return 0;
		t->ok = 1;
		t->sport = bpf_ntohs(uh->source);
		t->dport = bpf_ntohs(uh->dest);
		payload_words((__u8 *)(uh + 1), data_end, &t->word_a, &t->word_b);
	} else if (ip->proto == IPPROTO_ICMP || ip->proto == IPPROTO_ICMPV6) {
		/* type, code, checksum, identifier, sequence: NAT may rewrite the
		 * identifier (and so the checksum), never the sequence */
		__u8 *h = c->pos;
		if ((void *)(h + 8) > data_end)
			return 0;
		t->ok = 1;
		t->word_a = ((__u32)h[0] << 24) | ((__u32)h[1] << 16) | ((__u32)h[6] << 8) | h[7];
		__u32 unused = 0;
		payload_words(h + 8, data_end, &t->word_b, &unused);
	} else {
		t->ok = 1;
		payload_words(c->pos, data_end, &t->word_a, &t->word_b);
	}
	return 0;
}

/* Everything the measurements read, TCP timestamps included. */
static __always_inline void read_l4(struct hdr_cursor *c, void *data_end, const struct ip_view *ip,
				    struct l4_facts *t)
{
	__u32 hlen = read_l4_words(c, data_end, ip, t);
	if (hlen > sizeof(struct tcphdr))
		tcp_timestamps(c->pos, hlen - sizeof(struct tcphdr), data_end, t);
}

#endif /* SAURON_LIB_L4_H */
