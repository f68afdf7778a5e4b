/* Security checks on uplink G-PDUs at N3/N9 ingress, counted per slice and
 * kind (sauron_shared.h, enum sauron_security_kind).
 *
 * The counting program decides cheaply whether a frame needs them
 * (security_wanted): a frame of a TEID whose slot already vouches for its
 * inner source (and outer source, when peers are listed) needs none, and
 * costs no lookup. The others are handed to the measurement program
 * (measure_jobs), which runs check_security: the session's addresses, the
 * slice's UE subnets, the known peers, the protected prefixes, the inner
 * packet's GTP header. A check that passes marks the slot, so the next
 * frames of that TEID take the cheap way again. */
#ifndef SAURON_LIB_SECURITY_H
#define SAURON_LIB_SECURITY_H

#include "sauron_shared.h"
#include "lib/kept.h"
#include "lib/account.h"
#include "lib/classify.h"
#include "lib/parse.h"

#define SAURON_GTPC_PORT 2123

CPU_ARRAY(security_stats, __u64, SAURON_MAX_SLICES *SAURON_SEC_KINDS);
SAURON_KEPT_TABLE("hash", __u32, struct sauron_teid_session, teid_session, SAURON_MAX_TEIDS, 0);
SAURON_KEPT_TABLE("hash", struct sauron_ue_key, __u32, known_peers, SAURON_MAX_KNOWN_PEERS, 0);
SAURON_KEPT_TABLE("lpm_trie", struct sauron_ipv4_lpm_key, __u32, protected4, SAURON_MAX_PROTECTED,
		  BPF_F_NO_PREALLOC);
SAURON_KEPT_TABLE("lpm_trie", struct sauron_ipv6_lpm_key, __u32, protected6, SAURON_MAX_PROTECTED,
		  BPF_F_NO_PREALLOC);
BPF_TABLE("lru_hash", struct sauron_security_seen_key, struct sauron_security_seen, security_seen,
	  SAURON_SECURITY_SEEN_ENTRIES);
/* by attach point: the checks' program for the caller's hook (N3 ingress) */
BPF_PROG_ARRAY(security_xdp_prog, SAURON_POINTS);
BPF_PROG_ARRAY(security_tc_prog, SAURON_POINTS);

static __always_inline int same_addr(const __u8 a[16], const __u8 b[16])
{
	const __u32 *x = (const __u32 *)a;
	const __u32 *y = (const __u32 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int gtp_port(__u16 port)
{
	return port == SAURON_GTPU_PORT || port == SAURON_GTPC_PORT;
}

/* In the entry program, after counting: does this uplink G-PDU need the
 * checks? Not when its TEID's slot (this rules generation) says the TEID had
 * a rule and vouches for this inner source (and for this outer IPv4 source
 * when peers are listed), no prefix is protected, and the inner packet is
 * not to or from a GTP port. Decided here rather than where the counting
 * paths meet, so that it walks the verifier once. */
static __always_inline int security_wanted(const struct sauron_config *cfg, __u32 teid,
					   __u32 msg_kind, __u32 direction,
					   const struct ip_view *inner, __u16 sport, __u16 dport,
					   void *outer_ip, void *data_end)
{
	if (!cfg || !(cfg->measure & SAURON_MEASURE_SECURITY) || msg_kind != SAURON_MSG_G_PDU ||
	    (direction & 1) != SAURON_DIR_UPLINK)
		return 0;
	if (cfg->measure & SAURON_MEASURE_PROTECTED)
		return 1;
	if (inner->proto == IPPROTO_UDP && (gtp_port(sport) || gtp_port(dport)))
		return 1;
	struct sauron_teid_slot *slot = teid_slot_of(teid);
	if (!slot)
		return 1;
	__u32 need = SAURON_SESSION_VALID | SAURON_SESSION_TEID_KNOWN | SAURON_SESSION_SRC_OK;
	if ((slot->flags & need) != need || slot->teid != teid ||
	    slot->rules_generation != cfg->rules_generation ||
	    !same_addr(slot->ue_addr, inner->saddr))
		return 1;
	if (!(cfg->measure & SAURON_MEASURE_PEERS))
		return 0;
	struct iphdr *iph = outer_ip;
	if (!(slot->flags & SAURON_SESSION_PEER_OK) || (void *)(iph + 1) > data_end ||
	    iph->version != 4)
		return 1;
	return iph->saddr != slot->peer4;
}

static __always_inline void count_security(__u32 slice_id, __u32 kind)
{
	__u32 key = cpu_row(SAURON_MAX_SLICES * SAURON_SEC_KINDS,
			    (slice_id % SAURON_MAX_SLICES) * SAURON_SEC_KINDS + kind);
	__u64 *value = security_stats.lookup(&key);
	if (value)
		*value += 1;
}

/* What a detection needs of it: who, which TEID, when, how often. The
 * count is added atomically (every CPU may note the same entry), and a
 * fresh entry is inserted only where none is, else the other CPU's is
 * added to: the agent reads and removes entries as they fill. */
static __always_inline void note_seen(__u32 kind, __u32 teid, const __u8 addr[16], __u32 slice_id,
				      const __u8 peer[16])
{
	struct sauron_security_seen_key key = { .kind = kind, .teid = teid };
	__builtin_memcpy(key.addr, addr, 16);
	__u64 now = bpf_ktime_get_ns();
	struct sauron_security_seen *seen = security_seen.lookup(&key);
	if (!seen) {
		struct sauron_security_seen fresh = {
			.first_ns = now, .last_ns = now, .count = 1, .slice_id = slice_id
		};
		__builtin_memcpy(fresh.peer, peer, 16);
		if (security_seen.insert(&key, &fresh) == 0)
			return;
		seen = security_seen.lookup(&key);
		if (!seen)
			return;
	}
	seen->last_ns = now;
	__sync_fetch_and_add(&seen->count, 1);
	seen->slice_id = slice_id;
	__builtin_memcpy(seen->peer, peer, 16);
}

/* The first `bits` (1..64) bits of an 8-byte word as it lies in memory
 * (network order), for a word loaded on this little-endian machine. */
static __always_inline __u64 prefix_mask(__u64 host_order)
{
	return __builtin_bswap64(host_order);
}

/* The inner source against the session's addresses: the IPv4 address, or
 * the IPv6 prefix (its whole 8-byte words, then the bits left). */
static __always_inline int source_of_session(const struct sauron_teid_session *s,
					     const __u8 saddr[16])
{
	if (is_ipv4_mapped(saddr)) {
		const __u32 *words = (const __u32 *)saddr;
		const __u32 *mine = (const __u32 *)s->ue4;
		return (s->flags & SAURON_TEID_SESSION_V4) && words[3] == *mine;
	}
	if (!(s->flags & SAURON_TEID_SESSION_V6))
		return 0;
	__u32 bits = s->ue6_prefixlen > 128 ? 128 : s->ue6_prefixlen;
	const __u64 *a = (const __u64 *)saddr;
	const __u64 *b = (const __u64 *)s->ue6;
	if (bits >= 64) {
		if (a[0] != b[0])
			return 0;
		bits -= 64;
		if (!bits)
			return 1;
		__u64 mask = prefix_mask(~0ULL << (64 - bits));
		return (a[1] & mask) == (b[1] & mask);
	}
	if (!bits)
		return 1;
	__u64 mask = prefix_mask(~0ULL << (64 - bits));
	return (a[0] & mask) == (b[0] & mask);
}

static __always_inline int is_protected(const __u8 daddr[16])
{
	if (is_ipv4_mapped(daddr)) {
		struct sauron_ipv4_lpm_key key = { .prefixlen = 32 };
		__builtin_memcpy(&key.addr, &daddr[12], 4);
		return protected4.lookup(&key) != NULL;
	}
	struct sauron_ipv6_lpm_key key = { .prefixlen = 128 };
	__builtin_memcpy(key.addr, daddr, 16);
	return protected6.lookup(&key) != NULL;
}

/* A GTP header at the start of an inner UDP payload: GTPv1 (-U or -C) or
 * GTPv2-C, by its version and the message types they define. */
static __always_inline int carries_gtp(const __u8 *payload, void *data_end)
{
	if ((void *)(payload + 2) > data_end)
		return 0;
	__u8 version = payload[0] >> 5;
	__u8 type = payload[1];
	if (version == 1)
		return (payload[0] & 0x10) && (type == 255 || type <= 31 || type == 254);
	return version == 2 && type != 0;
}

/* Which checks the frame fails, counted; the slot vouches for what passed. */
static __always_inline __u32 check_security(__u32 measure, __u32 teid, __u32 slice_id,
					    int teid_known, const struct ip_view *inner,
					    const __u8 peer[16], __u32 peer_version,
					    const __u8 *l4_start, void *data_end)
{
	__u32 failed = 0;
	struct sauron_teid_slot *slot = teid_slot_of(teid);
	int mine = slot && (slot->flags & SAURON_SESSION_VALID) && slot->teid == teid;

	int vouched = mine && (slot->flags & SAURON_SESSION_SRC_OK) &&
		      same_addr(slot->ue_addr, inner->saddr);
	/* a learned session's TEID is known even when no slice took it */
	struct sauron_teid_session *session = NULL;
	if (!teid_known || !vouched)
		session = teid_session.lookup(&teid);
	if (!teid_known && !session) {
		failed |= 1 << SAURON_SEC_UNKNOWN_TEID;
		note_seen(SAURON_SEC_UNKNOWN_TEID, teid, peer, slice_id, peer);
	} else if (!vouched) {
		__u32 ue_slice = SAURON_UNCLASSIFIED_SLICE;
		int ok = session && session->flags
				 ? source_of_session(session, inner->saddr)
				 : slice_of_ue(inner->saddr, &ue_slice) && ue_slice == slice_id;
		if (ok && mine) {
			slot->flags |= SAURON_SESSION_SRC_OK | SAURON_SESSION_TEID_KNOWN;
			__builtin_memcpy(slot->ue_addr, inner->saddr, 16);
		} else if (!ok) {
			failed |= 1 << SAURON_SEC_UE_SOURCE_SPOOFED;
			note_seen(SAURON_SEC_UE_SOURCE_SPOOFED, teid, inner->saddr, slice_id, peer);
		}
	}
	if (measure & SAURON_MEASURE_PEERS) {
		const __u32 *peer_words = (const __u32 *)peer;
		if (!(mine && (slot->flags & SAURON_SESSION_PEER_OK) && peer_version == 4 &&
		      slot->peer4 == peer_words[3])) {
			struct sauron_ue_key key = {};
			__builtin_memcpy(key.addr, peer, 16);
			if (known_peers.lookup(&key)) {
				if (mine && peer_version == 4) {
					slot->flags |= SAURON_SESSION_PEER_OK;
					slot->peer4 = peer_words[3];
				}
			} else {
				failed |= 1 << SAURON_SEC_UNKNOWN_PEER;
				note_seen(SAURON_SEC_UNKNOWN_PEER, teid, peer, slice_id, peer);
			}
		}
	}
	if ((measure & SAURON_MEASURE_PROTECTED) && is_protected(inner->daddr))
		failed |= 1 << SAURON_SEC_INNER_TO_CORE;
	if (inner->proto == IPPROTO_UDP && !inner->later_fragment) {
		const struct udphdr *udp = (const struct udphdr *)l4_start;
		if ((void *)(udp + 1) <= data_end &&
		    (gtp_port(bpf_ntohs(udp->source)) || gtp_port(bpf_ntohs(udp->dest))) &&
		    carries_gtp((const __u8 *)(udp + 1), data_end))
			failed |= 1 << SAURON_SEC_GTP_IN_GTP;
	}
#pragma unroll
	for (__u32 kind = 0; kind < SAURON_SEC_KINDS; kind++)
		if (failed & (1 << kind))
			count_security(slice_id, kind);
	return failed;
}

#endif /* SAURON_LIB_SECURITY_H */
