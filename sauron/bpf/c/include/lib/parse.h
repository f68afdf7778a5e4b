/* Header parsing with a cursor, in the style of xdp-project's parsing helpers:
 * each parse_x() checks a header's bounds before reading a byte of it, moves
 * the cursor past it, and returns the next protocol, or -1 when the frame ends
 * or lies. The first anomaly met is kept in *anomaly; later ones do not
 * overwrite it, so every frame counts under one reason. */
#ifndef SAURON_LIB_PARSE_H
#define SAURON_LIB_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/in.h>
#include "sauron_shared.h"

struct hdr_cursor {
	void *pos;
};

struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* What the outer or inner IP header says about the rest of the frame.
 * Aligned, as struct l4_facts and the fingerprint, so that zeroing it writes
 * whole 8-byte stack words: the verifier takes a word only partly written
 * as read from the paths before it, and could not prune them. */
struct ip_view {
	__u8 version;	     /* 4 or 6 */
	__u8 proto;	     /* L4 protocol after any IPv6 extension headers */
	__u8 first_fragment; /* offset 0, more fragments follow */
	__u8 later_fragment; /* offset > 0: no L4 header here */
	__u32 payload_len;   /* L4 bytes the header announces */
	__u32 total_len;     /* whole IP packet the header announces */
	__u32 ip_id;	     /* IPv4 identification, IPv6 flow label */
	__u8 saddr[16];	     /* IPv4 stored IPv4-mapped */
	__u8 daddr[16];
} __attribute__((aligned(8)));

/* Rebuilds the cursor from its offset, hidden from the compiler and masked,
 * so the verifier sees one cursor state where the paths that led here (zero,
 * one or two VLAN tags; IPv4 options; IPv6 extensions; GTP-U extensions)
 * would otherwise each carry their own, multiplying the states it walks.
 * Every read after it is bounds-checked as always. */
#define SAURON_CURSOR_MASK 0x3fff

static __always_inline void cursor_merge(struct hdr_cursor *c, void *data)
{
	__u64 off = c->pos - data;
	asm volatile("" : "+r"(off));
	c->pos = data + (off & SAURON_CURSOR_MASK);
}

static __always_inline void note_anomaly(__u32 *anomaly, __u32 reason)
{
	if (*anomaly == 0)
		*anomaly = reason;
}

static __always_inline int is_vlan_proto(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* Ethernet and up to SAURON_MAX_VLAN_TAGS 802.1Q/802.1ad tags. */
static __always_inline int parse_ethhdr(struct hdr_cursor *c, void *data_end, __u32 *anomaly)
{
	struct ethhdr *eth = c->pos;

	if ((void *)(eth + 1) > data_end) {
		note_anomaly(anomaly, SAURON_AN_ETH_TRUNCATED);
		return -1;
	}
	c->pos = eth + 1;
	__be16 proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < SAURON_MAX_VLAN_TAGS; i++) {
		if (!is_vlan_proto(proto))
			break;
		struct vlan_tag *tag = c->pos;
		if ((void *)(tag + 1) > data_end) {
			note_anomaly(anomaly, SAURON_AN_VLAN_TRUNCATED);
			return -1;
		}
		proto = tag->encapsulated_proto;
		c->pos = tag + 1;
	}
	if (is_vlan_proto(proto)) {
		note_anomaly(anomaly, SAURON_AN_VLAN_TOO_DEEP);
		return -1;
	}
	return bpf_ntohs(proto);
}

/* What precedes the IP header on a link. */
enum sauron_link {
	SAURON_LINK_ETHERNET = 0, /* NICs, veth, bridges */
	SAURON_LINK_BARE_IP = 1,  /* TUN and GTP devices: the frame starts at IP */
};

/* A link without a link-layer header: the version nibble of the first byte
 * names the protocol. Anything else is not IP, and no anomaly. */
static __always_inline int parse_bare_ip(struct hdr_cursor *c, void *data_end)
{
	__u8 *first = c->pos;

	if ((void *)(first + 1) > data_end)
		return -1;
	if (*first >> 4 == 4)
		return ETH_P_IP;
	if (*first >> 4 == 6)
		return ETH_P_IPV6;
	return -1;
}

/* The link-layer header of a frame, by the link the program is built for (a
 * constant, so each entry keeps only its own branch). */
static __always_inline int parse_link(struct hdr_cursor *c, void *data_end, enum sauron_link link,
				      __u32 *anomaly)
{
	if (link == SAURON_LINK_BARE_IP)
		return parse_bare_ip(c, data_end);
	return parse_ethhdr(c, data_end, anomaly);
}

static __always_inline void ipv4_mapped(__u8 out[16], __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(&out[12], &addr, 4);
}

/* IPv4: IHL validated, options skipped. A total length that runs past the
 * frame is noted (snap length or a lying header) but parsing goes on. */
static __always_inline int parse_ipv4(struct hdr_cursor *c, void *data_end, struct ip_view *ip,
				      int want_addrs, __u32 *anomaly)
{
	struct iphdr *iph = c->pos;

	if ((void *)(iph + 1) > data_end) {
		note_anomaly(anomaly, SAURON_AN_IPV4_TRUNCATED);
		return -1;
	}
	__u32 hlen = (iph->ihl & 0xf) * 4;
	if (hlen < sizeof(*iph)) {
		note_anomaly(anomaly, SAURON_AN_IPV4_BAD_IHL);
		return -1;
	}
	if (c->pos + hlen > data_end) {
		note_anomaly(anomaly, SAURON_AN_IPV4_TRUNCATED);
		return -1;
	}
	__u32 total = bpf_ntohs(iph->tot_len);
	if (total < hlen) {
		note_anomaly(anomaly, SAURON_AN_IPV4_BAD_TOTAL_LENGTH);
		return -1;
	}
	if (c->pos + total > data_end)
		note_anomaly(anomaly, SAURON_AN_IP_TRUNCATED);

	__u16 frag = bpf_ntohs(iph->frag_off);
	ip->version = 4;
	ip->proto = iph->protocol;
	ip->later_fragment = (frag & 0x1fff) != 0;
	ip->first_fragment = !ip->later_fragment && (frag & 0x2000);
	ip->total_len = total;
	ip->payload_len = total - hlen;
	ip->ip_id = bpf_ntohs(iph->id);
	if (want_addrs) {
		ipv4_mapped(ip->saddr, iph->saddr);
		ipv4_mapped(ip->daddr, iph->daddr);
	}
	c->pos += hlen;
	return ip->proto;
}

struct ipv6_ext {
	__u8 next;
	__u8 len;
};

struct ipv6_fragment_hdr {
	__u8 next;
	__u8 reserved;
	__be16 offset_flags;
	__be32 id;
};

static __always_inline int is_ipv6_ext(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	       next == IPPROTO_FRAGMENT || next == IPPROTO_AH;
}

/* IPv6 and up to SAURON_MAX_IPV6_EXT_HEADERS extension headers, each walked
 * by its own length field. */
static __always_inline int parse_ipv6(struct hdr_cursor *c, void *data_end, struct ip_view *ip,
				      int want_addrs, __u32 *anomaly)
{
	struct ipv6hdr *ip6h = c->pos;

	if ((void *)(ip6h + 1) > data_end) {
		note_anomaly(anomaly, SAURON_AN_IPV6_TRUNCATED);
		return -1;
	}
	__u32 payload = bpf_ntohs(ip6h->payload_len);
	if ((void *)(ip6h + 1) + payload > data_end)
		note_anomaly(anomaly, SAURON_AN_IP_TRUNCATED);
	ip->version = 6;
	ip->total_len = payload + sizeof(*ip6h);
	ip->ip_id = bpf_ntohl(*(__be32 *)ip6h) & 0xfffff;
	if (want_addrs) {
		__builtin_memcpy(ip->saddr, &ip6h->saddr, 16);
		__builtin_memcpy(ip->daddr, &ip6h->daddr, 16);
	}
	c->pos = ip6h + 1;

	__u8 next = ip6h->nexthdr;
	__u32 ext_bytes = 0;
#pragma unroll
	for (int i = 0; i < SAURON_MAX_IPV6_EXT_HEADERS; i++) {
		if (!is_ipv6_ext(next))
			break;
		struct ipv6_ext *ext = c->pos;
		if ((void *)(ext + 1) > data_end) {
			note_anomaly(anomaly, SAURON_AN_IPV6_EXT_TRUNCATED);
			return -1;
		}
		__u32 len;
		if (next == IPPROTO_FRAGMENT) {
			struct ipv6_fragment_hdr *fh = c->pos;
			if ((void *)(fh + 1) > data_end) {
				note_anomaly(anomaly, SAURON_AN_IPV6_EXT_TRUNCATED);
				return -1;
			}
			__u16 off = bpf_ntohs(fh->offset_flags);
			ip->later_fragment = (off & 0xfff8) != 0;
			ip->first_fragment = !ip->later_fragment && (off & 1);
			len = sizeof(*fh);
		} else if (next == IPPROTO_AH) {
			len = ((__u32)ext->len + 2) * 4;
		} else {
			len = ((__u32)ext->len + 1) * 8;
		}
		if (c->pos + len > data_end) {
			note_anomaly(anomaly, SAURON_AN_IPV6_EXT_TRUNCATED);
			return -1;
		}
		next = ext->next;
		ext_bytes += len;
		c->pos += len;
	}
	if (is_ipv6_ext(next)) {
		note_anomaly(anomaly, SAURON_AN_IPV6_EXT_TOO_MANY);
		return -1;
	}
	ip->proto = next;
	ip->payload_len = payload > ext_bytes ? payload - ext_bytes : 0;
	return next;
}

/* Either IP version, chosen by the ethertype. The addresses are copied out
 * only when the caller needs them (not for the outer header of GTP-U). */
static __always_inline int parse_ip(struct hdr_cursor *c, void *data_end, int version,
				    struct ip_view *ip, int want_addrs, __u32 *anomaly)
{
	if (version == 4)
		return parse_ipv4(c, data_end, ip, want_addrs, anomaly);
	return parse_ipv6(c, data_end, ip, want_addrs, anomaly);
}

/* UDP: the length field must cover the header and, unless the datagram is
 * fragmented, agree with what the IP header announces. */
static __always_inline int parse_udphdr(struct hdr_cursor *c, void *data_end,
					const struct ip_view *ip, struct udphdr **udph,
					__u32 *anomaly)
{
	struct udphdr *h = c->pos;

	if ((void *)(h + 1) > data_end) {
		note_anomaly(anomaly, SAURON_AN_UDP_TRUNCATED);
		return -1;
	}
	__u32 len = bpf_ntohs(h->len);
	if (len < sizeof(*h) || (!ip->first_fragment && len > ip->payload_len))
		note_anomaly(anomaly, SAURON_AN_UDP_BAD_LENGTH);
	c->pos = h + 1;
	*udph = h;
	return len;
}

#endif /* SAURON_LIB_PARSE_H */
