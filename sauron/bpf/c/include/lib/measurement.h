/* The measurement programs' work: transit stamps and matches, RTT stamps
 * and samples, GTP-U sequence tracking and TCP retransmissions, on what the
 * counting program left in measure_jobs. */
#ifndef SAURON_LIB_MEASUREMENT_H
#define SAURON_LIB_MEASUREMENT_H

#include "sauron_shared.h"
#include "lib/point.h"
#include "lib/parse.h"
#include "lib/account.h"
#include "lib/gtpu.h"
#include "lib/pipeline.h"
#include "lib/measure.h"
#include "lib/l4.h"
#include "lib/transit.h"
#include "lib/rtt.h"
#include "lib/sequence.h"
#include "lib/retrans.h"
#include "lib/echo.h"
#include "lib/evidence.h"

/* Transit, RAN-side RTT and retransmissions for a G-PDU's inner packet.
 * Downlink transit samples go to the slice the tunnel belongs to, which N6
 * may not know (NAT). */
static __always_inline void measure_gtpu_side(const struct sauron_config *cfg, __u32 point,
					      const struct ip_view *inner,
					      const struct l4_facts *l4, __u32 slice_id, __u32 dir)
{
	if (!cfg || !cfg->measure)
		return;
	if (point_is_egress(point)) {
		__u32 stamp_slice;
		__u64 ns;
		if (transit_match(cfg, inner, l4, dir, &stamp_slice, &ns))
			record_transit(slice_id ? slice_id : stamp_slice, dir, ns);
		rtt_outbound(cfg, RTT_SIDE_RAN, inner, l4, dir, slice_id);
	} else {
		/* the entry program took the transit stamp */
		rtt_inbound(cfg, RTT_SIDE_RAN, inner, l4, dir);
	}
	track_retransmissions(cfg, inner, l4, slice_id, dir);
}

/* The outer source and destination of a GTP-U frame, IPv4 mapped. */
static __always_inline int outer_addresses(void *outer_ip, void *data_end, __u8 src[16],
					   __u8 dst[16])
{
	if (outer_ip + 1 > data_end)
		return -1;
	__u8 version = *(__u8 *)outer_ip >> 4;
	if (version == 4) {
		struct iphdr *iph = outer_ip;
		if ((void *)(iph + 1) > data_end)
			return -1;
		ipv4_mapped(src, iph->saddr);
		ipv4_mapped(dst, iph->daddr);
		return 0;
	}
	struct ipv6hdr *ip6h = outer_ip;
	if ((void *)(ip6h + 1) > data_end)
		return -1;
	__builtin_memcpy(src, &ip6h->saddr, 16);
	__builtin_memcpy(dst, &ip6h->daddr, 16);
	return 0;
}

/* The peer of an echo message is the outer source on ingress and the
 * outer destination on egress. */
static __always_inline void measure_echo(const __u8 src[16], const __u8 dst[16], __u32 point,
					 __u32 msg_kind, __u32 seq)
{
	int outgoing = point_is_egress(point);
	const __u8 *peer = outgoing ? dst : src;

	if (msg_kind == SAURON_MSG_ECHO_REQUEST)
		echo_request(peer, seq, outgoing);
	else
		echo_response(peer, seq, outgoing);
}

/* The security checks of an uplink G-PDU at N3/N9 ingress (lib/security.h),
 * in a program of their own (security_xdp.c, security_tc.c) reached by tail
 * call from the measurement program: verified apart, as measuring is from
 * counting. The inner packet and the outer source are read again. */
static __always_inline void run_security(void *data, void *data_end, __u32 point)
{
	__u32 zero = 0;
	struct measure_job *job = measure_jobs.lookup(&zero);
	const struct sauron_config *cfg = agent_config();
	if (!job || !cfg || job->point != point || !job->security || !job->has_ip)
		return;
	struct ip_view inner = {};
	struct hdr_cursor c;
	if (reparse_ip(data, data_end, point, job->ip_offset, &inner, &c) < 0)
		return;
	const __u8 *l4_start = c.pos;
	__u8 src[16], dst[16];
	void *outer_ip = data + (job->outer_offset & SAURON_CURSOR_MASK);
	if (outer_addresses(outer_ip, data_end, src, dst) < 0)
		return;
	__u32 version = is_ipv4_mapped(src) ? 4 : 6;
	__u32 failed = check_security(cfg->measure, job->teid, job->slice_id % SAURON_MAX_SLICES,
				      job->teid_known, &inner, src, version, l4_start, data_end);
#ifdef SAURON_RECORD_LAST
	struct sauron_parse_result *r = last_result.lookup(&zero);
	if (r) {
		r->security = failed;
		__builtin_memcpy(r->peer, src, 16);
	}
#else
	(void)failed;
#endif
}

/* Transit and DN-side RTT for a packet on N6. Uplink transit samples and
 * DN-side RTT stamps take the slice the packet was stamped under on N3,
 * which NAT has hidden from N6. */
static __always_inline void measure_n6_side(const struct sauron_config *cfg, __u32 point,
					    const struct ip_view *ip, const struct l4_facts *l4,
					    __u32 slice_id, __u32 dir)
{
	if (point_is_egress(point)) {
		__u32 stamp_slice;
		__u64 ns;
		if (transit_match(cfg, ip, l4, dir, &stamp_slice, &ns)) {
			record_transit(stamp_slice, dir, ns);
			if (!slice_id)
				slice_id = stamp_slice;
		}
		rtt_outbound(cfg, RTT_SIDE_DN, ip, l4, dir, slice_id);
	} else {
		rtt_inbound(cfg, RTT_SIDE_DN, ip, l4, dir);
	}
}

/* One program per attach point (the point a constant), so that each is
 * verified with only its own side's paths: a stamp or a match, the GTP-U
 * or the N6 side. */
static __always_inline void run_measurement(void *data, void *data_end, __u32 point)
{
	__u32 zero = 0;
	struct measure_job *job = measure_jobs.lookup(&zero);
	const struct sauron_config *cfg = agent_config();
	if (!job || !cfg || job->point != point)
		return;
	__u32 dir = job->direction & 1;
	__u32 slice_id = job->slice_id % SAURON_MAX_SLICES;
	int has_seq = (job->gtp_flags & GTPU_FLAG_S) != 0;

	int echo = job->msg_kind == SAURON_MSG_ECHO_REQUEST ||
		   job->msg_kind == SAURON_MSG_ECHO_RESPONSE;
	if (has_seq && (echo || job->msg_kind == SAURON_MSG_G_PDU)) {
		__u8 src[16], dst[16];
		void *outer_ip = data + (job->outer_offset & SAURON_CURSOR_MASK);
		if (outer_addresses(outer_ip, data_end, src, dst) < 0)
			return;
		if (echo) {
			if (measuring(cfg, SAURON_MEASURE_RTT))
				measure_echo(src, dst, point, job->msg_kind, job->seq);
			return;
		}
		track_sequence(cfg, job->teid, dst, job->seq, slice_id, dir);
	}
	if (job->msg_kind != SAURON_MSG_G_PDU && job->msg_kind != SAURON_MSG_NOT_GTPU)
		return;
	if (!job->has_ip)
		return;
	struct ip_view ip = {};
	struct hdr_cursor c;
	if (reparse_ip(data, data_end, point, job->ip_offset, &ip, &c) < 0)
		return;
	struct l4_facts l4 = {};
	read_l4(&c, data_end, &ip, &l4);
	if (point_sees_gtpu(point))
		measure_gtpu_side(cfg, point, &ip, &l4, slice_id, dir);
	else
		measure_n6_side(cfg, point, &ip, &l4, slice_id, dir);
}

/* Whether the frame the measurement program saw still needs the checks. */
static __always_inline int security_pending(__u32 point)
{
	__u32 zero = 0;
	struct measure_job *job = measure_jobs.lookup(&zero);
	return job && job->point == point && job->security;
}

#endif /* SAURON_LIB_MEASUREMENT_H */
