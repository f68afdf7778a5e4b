/* The path every frame takes: parse, classify, account. One function per side
 * of the UPF; the entry files only adapt their context to it. Nothing here
 * writes the packet, and the caller always passes it on. */
#ifndef SAURON_LIB_PIPELINE_H
#define SAURON_LIB_PIPELINE_H

#include <linux/tcp.h>
#include "sauron_shared.h"
#include "lib/point.h"
#include "lib/parse.h"
#include "lib/gtpu.h"
#include "lib/classify.h"
#include "lib/account.h"
#include "lib/measure.h"
#include "lib/l4.h"
#include "lib/transit.h"
#include "lib/security.h"

#ifdef SAURON_RECORD_LAST
BPF_ARRAY(last_result, struct sauron_parse_result, 1);
#endif

struct l4_ports {
	__u16 sport;
	__u16 dport;
};

struct frame_facts {
	__u32 event;
	__u32 anomaly;
	__u32 slice_id;
	__u32 direction;
	__u32 msg_kind;
	__u32 inner_proto;
	__u64 inner_bytes;
	struct l4_ports ports;
	__u8 ue_addr[16];
	__u8 has_ue;
	__u8 teid_known; /* the TEID matched a session or catalog TEID rule */
};

static __always_inline void record_result(const struct frame_facts *f, const struct gtpu_view *g)
{
#ifdef SAURON_RECORD_LAST
	__u32 zero = 0;
	struct sauron_parse_result *r = last_result.lookup(&zero);
	if (!r)
		return;
	r->event = f->event;
	r->anomaly = f->anomaly;
	r->teid = g->teid;
	r->slice_id = f->slice_id;
	r->direction = f->direction;
	r->msg_kind = f->msg_kind;
	r->qfi = g->qfi;
	r->pdu_type = g->pdu_type;
	r->inner_proto = f->inner_proto;
	r->inner_sport = f->ports.sport;
	r->inner_dport = f->ports.dport;
	r->ext_headers = g->ext_headers;
	r->gtp_seq = g->seq;
	r->flags = ((g->flags & GTPU_FLAG_S) ? SAURON_RES_HAS_SEQ : 0) |
		   (f->has_ue ? SAURON_RES_HAS_UE : 0);
	__builtin_memcpy(r->ue_addr, f->ue_addr, 16);
	/* the measurement program sets them when it checks the frame */
	r->security = 0;
	__builtin_memset(r->peer, 0, 16);
#endif
}

static __always_inline void finish_frame(__u32 point, struct frame_facts *f,
					 const struct gtpu_view *g)
{
	/* frames accounted per slice are counted there (sauron_shared.h) */
	if (f->event != SAURON_EV_GTPU && f->event != SAURON_EV_IP)
		count_event(point, f->event);
	if (f->anomaly)
		count_event(point, f->anomaly);
	record_result(f, g);
}

static __always_inline int has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* The packet a G-PDU carries: IPv4 or IPv6 by its version nibble. */
static __always_inline int parse_inner_ip(struct hdr_cursor *c, void *data_end, struct ip_view *ip,
					  struct l4_ports *ports, __u32 *anomaly)
{
	__u8 *first = c->pos;

	if ((void *)(first + 1) > data_end) {
		note_anomaly(anomaly, SAURON_AN_INNER_TRUNCATED);
		return -1;
	}
	__u8 version = *first >> 4;
	if (version == 4) {
		struct iphdr *iph = c->pos;
		if ((void *)(iph + 1) > data_end) {
			note_anomaly(anomaly, SAURON_AN_INNER_TRUNCATED);
			return -1;
		}
		__u32 hlen = (iph->ihl & 0xf) * 4;
		__u32 total = bpf_ntohs(iph->tot_len);
		if (hlen < sizeof(*iph) || total < hlen || c->pos + hlen > data_end) {
			note_anomaly(anomaly, SAURON_AN_INNER_TRUNCATED);
			return -1;
		}
		if (c->pos + total > data_end)
			note_anomaly(anomaly, SAURON_AN_INNER_TRUNCATED);
		ip->version = 4;
		ip->proto = iph->protocol;
		ip->total_len = total;
		ip->payload_len = total - hlen;
		ip->ip_id = bpf_ntohs(iph->id);
		ip->later_fragment = (bpf_ntohs(iph->frag_off) & 0x1fff) != 0;
		ipv4_mapped(ip->saddr, iph->saddr);
		ipv4_mapped(ip->daddr, iph->daddr);
		c->pos += hlen;
	} else if (version == 6) {
		struct ipv6hdr *ip6h = c->pos;
		if ((void *)(ip6h + 1) > data_end) {
			note_anomaly(anomaly, SAURON_AN_INNER_TRUNCATED);
			return -1;
		}
		__u32 total = bpf_ntohs(ip6h->payload_len) + sizeof(*ip6h);
		if (c->pos + total > data_end)
			note_anomaly(anomaly, SAURON_AN_INNER_TRUNCATED);
		ip->version = 6;
		ip->proto = ip6h->nexthdr;
		ip->total_len = total;
		ip->payload_len = total - sizeof(*ip6h);
		ip->ip_id = bpf_ntohl(*(__be32 *)ip6h) & 0xfffff;
		__builtin_memcpy(ip->saddr, &ip6h->saddr, 16);
		__builtin_memcpy(ip->daddr, &ip6h->daddr, 16);
		c->pos = ip6h + 1;
	} else {
		note_anomaly(anomaly, SAURON_AN_INNER_NOT_IP);
		return -1;
	}
	if (!ip->later_fragment && has_ports(ip->proto)) {
		struct l4_ports *p = c->pos;
		if ((void *)(p + 1) > data_end) {
			note_anomaly(anomaly, SAURON_AN_INNER_L4_TRUNCATED);
		} else {
			ports->sport = bpf_ntohs(p->sport);
			ports->dport = bpf_ntohs(p->dport);
		}
	}
	return ip->proto;
}

static __always_inline __u32 resolve_dirmode(__u32 point, const struct sauron_config *cfg)
{
	__u32 mode = SAURON_DIRMODE_POINT;
	if (cfg && point < SAURON_POINTS)
		mode = cfg->direction_mode[point];
	if (mode != SAURON_DIRMODE_POINT)
		return mode;
	return point_direction(point) == SAURON_DIR_DOWNLINK ? SAURON_DIRMODE_DOWNLINK
							     : SAURON_DIRMODE_UPLINK;
}

/* A fixed direction picks the UE address without a lookup: the source when
 * uplink, the destination when downlink. */
static __always_inline void fixed_direction(__u32 mode, const struct ip_view *ip,
					    struct frame_facts *f)
{
	f->has_ue = 1;
	if (mode == SAURON_DIRMODE_DOWNLINK) {
		f->direction = SAURON_DIR_DOWNLINK;
		__builtin_memcpy(f->ue_addr, ip->daddr, 16);
	} else {
		f->direction = SAURON_DIR_UPLINK;
		__builtin_memcpy(f->ue_addr, ip->saddr, 16);
	}
}

/* AUTO without a PDU Session Container: the address that falls in a UE
 * subnet decides, source first. Returns 1 and its slice when one does. */
static __always_inline int auto_direction(const struct ip_view *ip, struct frame_facts *f,
					  __u32 *ue_slice)
{
	f->has_ue = 1;
	if (slice_of_ue(ip->saddr, ue_slice)) {
		f->direction = SAURON_DIR_UPLINK;
		__builtin_memcpy(f->ue_addr, ip->saddr, 16);
		return 1;
	}
	if (slice_of_ue(ip->daddr, ue_slice)) {
		f->direction = SAURON_DIR_DOWNLINK;
		__builtin_memcpy(f->ue_addr, ip->daddr, 16);
		return 1;
	}
	f->direction = SAURON_DIR_UPLINK;
	__builtin_memcpy(f->ue_addr, ip->saddr, 16);
	return 0;
}

/* The rule chain: TEID, UE subnet, QFI, else unclassified. Sets direction
 * and UE address too. */
static __always_inline void classify_gtpu(__u32 mode, const struct gtpu_view *g,
					  const struct ip_view *inner, int inner_ok,
					  struct frame_facts *f)
{
	__u32 ue_slice = SAURON_UNCLASSIFIED_SLICE;
	int ue_hit = 0;

	if (mode == SAURON_DIRMODE_AUTO && g->pdu_type != GTPU_PDU_TYPE_NONE)
		mode = g->pdu_type == 0 ? SAURON_DIRMODE_DOWNLINK : SAURON_DIRMODE_UPLINK;
	if (!inner_ok)
		f->direction =
			mode == SAURON_DIRMODE_DOWNLINK ? SAURON_DIR_DOWNLINK : SAURON_DIR_UPLINK;
	else if (mode == SAURON_DIRMODE_AUTO)
		ue_hit = auto_direction(inner, f, &ue_slice);
	else
		fixed_direction(mode, inner, f);

	if (g->teid != 0 && slice_of_teid(g->teid, &f->slice_id)) {
		f->teid_known = 1;
		return;
	}
	if (ue_hit ||
	    (f->has_ue && mode != SAURON_DIRMODE_AUTO && slice_of_ue(f->ue_addr, &ue_slice))) {
		f->slice_id = ue_slice;
		return;
	}
	if (!slice_of_qfi(g->qfi, &f->slice_id))
		f->slice_id = SAURON_UNCLASSIFIED_SLICE;
}

/* The user's IP packet again, from the offset the counting program left:
 * inner on N3 (a G-PDU's payload), the frame's own on N6. */
static __always_inline int reparse_ip(void *data, void *data_end, __u32 point, __u32 offset,
				      struct ip_view *ip, struct hdr_cursor *c)
{
	__u32 ignored_anomaly = 0;
	struct l4_ports ignored_ports;

	c->pos = data + (offset & SAURON_CURSOR_MASK);
	if (point_sees_gtpu(point))
		return parse_inner_ip(c, data_end, ip, &ignored_ports, &ignored_anomaly);
	__u8 *first = c->pos;
	if ((void *)(first + 1) > data_end)
		return -1;
	if (parse_ip(c, data_end, *first >> 4, ip, 1, &ignored_anomaly) < 0)
		return -1;
	/* one cursor state past the IPv6 extension walk for the L4 reads */
	cursor_merge(c, data);
	return 0;
}

/* While some slice is diagnosed: is this frame that slice's? (Only its
 * frames go on to the measurement program for their heads.) */
static __always_inline int evidence_wanted(const struct measure_job *job)
{
	if (!job->evidence)
		return 0;
	__u32 index = job->slice_id % SAURON_MAX_SLICES;
	struct sauron_slice_config *sc = slice_config.lookup(&index);
	return sc && (sc->flags & SAURON_SLICE_EVIDENCE);
}

/* In the entry program, after counting: takes the transit stamp where the
 * packet enters the UPF (no tail call for it), and says whether the
 * measurement program has work left: TCP (round trips, retransmissions),
 * sequence numbers, echo, or the matches where packets leave. The packet is
 * parsed again from the offset the counting left, a few loads of lines
 * already in cache: carrying the parse across would put the stamp in the
 * counting code, where every parsing path meets and each instruction is
 * walked by the verifier once per path. */
static __always_inline int measure_pending(void *data, void *data_end, __u32 point)
{
	__u32 zero = 0;
	struct measure_job *job = measure_jobs.lookup(&zero);
	if (!job || !job->pending)
		return 0;
	job->pending = 0;
	if (!point_is_ingress(point) || !job->has_ip)
		return 1;
	if (job->msg_kind != SAURON_MSG_G_PDU && job->msg_kind != SAURON_MSG_NOT_GTPU)
		return 1;
	int more = (job->gtp_flags & GTPU_FLAG_S) != 0 || evidence_wanted(job);
	struct ip_view ip = {};
	struct hdr_cursor c;
	if (reparse_ip(data, data_end, point, job->ip_offset, &ip, &c) < 0)
		return more;
	struct l4_facts l4 = {};
	read_l4_words(&c, data_end, &ip, &l4);
	const struct sauron_config *cfg = agent_config();
	transit_stamp(cfg, &ip, &l4, job->slice_id, job->direction & 1);
	if (point_sees_gtpu(point))
		job->security = security_wanted(
			cfg, job->teid, job->msg_kind, job->direction, &ip, l4.sport, l4.dport,
			data + (job->outer_offset & SAURON_CURSOR_MASK), data_end);
	return more || job->security || ip.proto == IPPROTO_TCP;
}

/* The packet's bounds read again from the context: the pointers the parsing
 * left carry, for the verifier, as many proven lengths as there were paths
 * through it, and would each walk what follows once. */
static __always_inline int measure_pending_xdp(struct xdp_md *ctx, __u32 point)
{
	return measure_pending((void *)(long)ctx->data, (void *)(long)ctx->data_end, point);
}

static __always_inline int measure_pending_tc(struct __sk_buff *skb, __u32 point)
{
	return measure_pending((void *)(long)skb->data, (void *)(long)skb->data_end, point);
}

/* Hands the frame to the measurement program through a per-CPU scratch
 * entry (a tail call carries only the context); the entry program makes the
 * call when it finds the job pending. Cheap here on purpose: this code sits
 * where every parsing path meets. */
static __always_inline void post_measure_job(__u32 point, __u32 msg_kind, const struct gtpu_view *g,
					     __u32 slice_id, __u32 dir, int has_ip, __u32 ip_offset,
					     __u32 outer_offset, __u64 frame_len, __u32 evidence,
					     __u32 teid_known)
{
	__u32 zero = 0;
	struct measure_job *job = measure_jobs.lookup(&zero);
	if (!job)
		return;
	job->point = point;
	job->msg_kind = msg_kind;
	job->slice_id = slice_id;
	job->direction = dir;
	job->teid = g->teid;
	job->seq = g->seq;
	job->gtp_flags = g->flags;
	job->has_ip = has_ip;
	job->ip_offset = ip_offset;
	job->outer_offset = outer_offset;
	job->frame_len = frame_len;
	job->evidence = evidence;
	job->security = 0; /* measure_pending decides */
	job->teid_known = teid_known;
	job->pending = 1;
}

/* N3/N9 side: GTP-U frames. */
static __always_inline void sauron_gtpu_frame(void *data, void *data_end, __u64 frame_len,
					      __u32 point, enum sauron_link link)
{
	struct hdr_cursor c = { .pos = data };
	struct frame_facts f = { .event = SAURON_EV_IP_NOT_GTPU };
	struct gtpu_view g = { .qfi = SAURON_NO_QFI, .pdu_type = GTPU_PDU_TYPE_NONE };
	struct ip_view outer = {};
	struct ip_view inner = {};
	struct udphdr *udph;

	int proto = parse_link(&c, data_end, link, &f.anomaly);
	if (proto != ETH_P_IP && proto != ETH_P_IPV6) {
		f.event = SAURON_EV_NOT_IP;
		goto out;
	}
	cursor_merge(&c, data);
	__u32 outer_offset = c.pos - data;
	if (parse_ip(&c, data_end, proto == ETH_P_IP ? 4 : 6, &outer, 0, &f.anomaly) < 0)
		goto out;
	cursor_merge(&c, data);
	if (outer.later_fragment) {
		f.event = SAURON_EV_OUTER_FRAGMENT;
		goto out;
	}
	if (outer.proto != IPPROTO_UDP)
		goto out;
	int udp_len = parse_udphdr(&c, data_end, &outer, &udph, &f.anomaly);
	if (udp_len < 0)
		goto out;
	if (udph->source != bpf_htons(SAURON_GTPU_PORT) &&
	    udph->dest != bpf_htons(SAURON_GTPU_PORT))
		goto out;
	if (outer.first_fragment)
		note_anomaly(&f.anomaly, SAURON_AN_OUTER_FIRST_FRAGMENT);
	if (parse_gtpu(&c, data_end, udp_len, &g, &f.anomaly) < 0)
		goto out;
	cursor_merge(&c, data);
	f.event = SAURON_EV_GTPU;
	f.msg_kind = gtpu_msg_kind(g.msg_type);

	int inner_ok = 0;
	__u32 inner_offset = c.pos - data;
	if (f.msg_kind == SAURON_MSG_G_PDU && g.payload_ok) {
		inner_ok = parse_inner_ip(&c, data_end, &inner, &f.ports, &f.anomaly) >= 0;
		if (inner_ok) {
			f.inner_proto = inner.proto;
			f.inner_bytes = inner.total_len;
		}
	}

	const struct sauron_config *cfg = agent_config();
	__u32 generation = cfg ? cfg->rules_generation : 0;
	__u32 mode = resolve_dirmode(point, cfg);
	struct sauron_teid_slot *slot = NULL;
	int cached = 0;
	if (f.msg_kind == SAURON_MSG_G_PDU && mode != SAURON_DIRMODE_AUTO) {
		slot = teid_slot_of(g.teid);
		cached = slot && (slot->flags & SAURON_SESSION_VALID) && slot->teid == g.teid &&
			 slot->rules_generation == generation;
	}
	if (cached) {
		f.slice_id = slot->slice_id;
		f.direction =
			mode == SAURON_DIRMODE_DOWNLINK ? SAURON_DIR_DOWNLINK : SAURON_DIR_UPLINK;
		f.has_ue = slot->flags & SAURON_SESSION_HAS_UE;
		f.teid_known = (slot->flags & SAURON_SESSION_TEID_KNOWN) != 0;
		__builtin_memcpy(f.ue_addr, slot->ue_addr, 16);
	} else {
		classify_gtpu(mode, &g, &inner, inner_ok, &f);
	}

	__u32 dir = f.direction & 1;
	__u32 slice_id = bounded_slice(f.slice_id);
	f.slice_id = slice_id;
	count_slice(point, slice_id, dir, f.msg_kind, frame_len, f.inner_bytes, f.anomaly != 0);
	if (f.msg_kind == SAURON_MSG_G_PDU) {
		count_qfi(point, slice_id, g.qfi, dir, frame_len);
		if (slot) {
			if (!cached) {
				if (slot->flags & SAURON_SESSION_VALID)
					flush_teid_slot(slot);
				fill_teid_slot(slot, g.teid, slice_id, generation, f.ue_addr,
					       f.has_ue, f.teid_known);
			}
			slot->packets[dir] += 1;
			slot->bytes[dir] += frame_len;
			slot->qfi = g.qfi;
		} else {
			count_unslotted(g.teid, slice_id, generation, dir, frame_len, g.qfi,
					f.ue_addr, f.has_ue, 1);
		}
	}
	if (cfg && cfg->measure)
		post_measure_job(point, f.msg_kind, &g, slice_id, dir, inner_ok, inner_offset,
				 outer_offset, frame_len, cfg->measure & SAURON_MEASURE_EVIDENCE,
				 f.teid_known);
out:
	finish_frame(point, &f, &g);
}

/* N6 side: plain IP to and from the data network. */
static __always_inline void sauron_ip_frame(void *data, void *data_end, __u64 frame_len,
					    __u32 point, enum sauron_link link)
{
	struct hdr_cursor c = { .pos = data };
	struct frame_facts f = { .event = SAURON_EV_NOT_IP, .msg_kind = SAURON_MSG_NOT_GTPU };
	struct gtpu_view g = { .qfi = SAURON_NO_QFI, .pdu_type = GTPU_PDU_TYPE_NONE };
	struct ip_view ip = {};

	int proto = parse_link(&c, data_end, link, &f.anomaly);
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		goto out;
	cursor_merge(&c, data);
	__u32 ip_offset = c.pos - data;
	if (parse_ip(&c, data_end, proto == ETH_P_IP ? 4 : 6, &ip, 1, &f.anomaly) < 0)
		goto out;
	cursor_merge(&c, data);
	f.event = SAURON_EV_IP;
	f.inner_proto = ip.proto;
	f.inner_bytes = ip.total_len;
	if (!ip.later_fragment && has_ports(ip.proto)) {
		struct l4_ports *p = c.pos;
		if ((void *)(p + 1) <= data_end) {
			f.ports.sport = bpf_ntohs(p->sport);
			f.ports.dport = bpf_ntohs(p->dport);
		}
	}

	const struct sauron_config *cfg = agent_config();
	__u32 generation = cfg ? cfg->rules_generation : 0;
	__u32 mode = resolve_dirmode(point, cfg);
	__u32 ue_slice = SAURON_UNCLASSIFIED_SLICE;
	int ue_hit = 0;
	if (mode == SAURON_DIRMODE_AUTO)
		ue_hit = auto_direction(&ip, &f, &ue_slice);
	else
		fixed_direction(mode, &ip, &f);

	struct sauron_ue_slot *slot = NULL;
	int cached = 0;
	if (mode != SAURON_DIRMODE_AUTO) {
		slot = ue_slot_of(f.ue_addr);
		cached = slot && (slot->flags & SAURON_SESSION_VALID) &&
			 same_ue(slot->ue_addr, f.ue_addr) && slot->rules_generation == generation;
	}
	if (cached)
		f.slice_id = slot->slice_id;
	else if (ue_hit || (mode != SAURON_DIRMODE_AUTO && slice_of_ue(f.ue_addr, &ue_slice)))
		f.slice_id = ue_slice;

	__u32 dir = f.direction & 1;
	__u32 slice_id = bounded_slice(f.slice_id);
	f.slice_id = slice_id;
	count_slice(point, slice_id, dir, f.msg_kind, frame_len, f.inner_bytes, f.anomaly != 0);
	if (slot) {
		if (!cached) {
			if (slot->flags & SAURON_SESSION_VALID)
				flush_ue_slot(slot);
			fill_ue_slot(slot, f.ue_addr, slice_id, generation);
		}
		slot->packets[dir] += 1;
		slot->bytes[dir] += frame_len;
	} else {
		count_unslotted(0, slice_id, generation, dir, frame_len, SAURON_NO_QFI, f.ue_addr,
				1, 0);
	}
	if (cfg && cfg->measure)
		post_measure_job(point, f.msg_kind, &g, slice_id, dir, 1, ip_offset, 0, frame_len,
				 0, 0);
out:
	finish_frame(point, &f, &g);
}

#endif /* SAURON_LIB_PIPELINE_H */
