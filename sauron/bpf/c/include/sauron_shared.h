/* Sauron: the facts shared by the data-path programs and the Python agent.
 *
 * This header is the single owner of the data path's map sizes, enum values
 * and the layout of every map key and value that user space reads (the
 * energy probe's are sauron_energy.h's). sauron/abi/layout.py parses the
 * #defines and enums below, and a test checks its ctypes views against the
 * types clang builds from this file.
 */
#ifndef SAURON_SHARED_H
#define SAURON_SHARED_H

/* Slice ids are small integers assigned by the agent; 0 is "unclassified".
 * Every per-slice map is slice-major (the slice id is the outermost part of
 * its index), so a reading covers only the slices in use: the catalog's
 * highest id, not this maximum, sets the agent's cost per interval. */
#define SAURON_MAX_SLICES 256
#define SAURON_UNCLASSIFIED_SLICE 0
/* QFI is six bits (TS 38.415). */
#define SAURON_MAX_QFI 64
#define SAURON_NO_QFI 255

#define SAURON_MAX_TEIDS 65536
#define SAURON_MAX_TEID_RANGES 1024
/* UE address rules: the catalog's subnets and the learned sessions' own
 * addresses (one per PDU session). The tries allocate per entry, so the
 * bound costs nothing until used. */
#define SAURON_MAX_UE_RULES 65536
#define SAURON_TEID_STATS_ENTRIES 65536
/* Direct-mapped slots per CPU in front of teid_stats and ue_stats (powers
 * of two). */
#define SAURON_TEID_SLOTS 16384
#define SAURON_TEID_SLOT_BITS 14
#define SAURON_UE_SLOTS 16384
#define SAURON_UE_SLOT_BITS 14
/* Longest L4 payload stamped for transit: a 1500-byte IPv4 packet's. A
 * longer one is a GRO aggregate the UPF's kernel splits before it leaves,
 * so no piece could match its stamp. */
#define SAURON_TRANSIT_MAX_PAYLOAD 1480
#define SAURON_UE_STATS_ENTRIES 65536

/* Parser bounds: tags in front of the outer IP header, IPv6 extension headers
 * walked before UDP, and GTP-U extension headers walked by their length. */
#define SAURON_MAX_VLAN_TAGS 2
#define SAURON_MAX_IPV6_EXT_HEADERS 4
#define SAURON_MAX_GTPU_EXT_HEADERS 8

#define SAURON_GTPU_PORT 2152

enum sauron_direction {
	SAURON_DIR_UPLINK = 0,
	SAURON_DIR_DOWNLINK = 1,
	SAURON_DIRS = 2,
};

/* What the frames at an attach point carry. */
enum sauron_side {
	SAURON_GTPU_SIDE = 1, /* GTP-U: N3 towards the gNB, N9 between UPFs */
	SAURON_IP_SIDE = 2,   /* the users' own IP packets: N6 towards the data network */
};

/* Whether frames enter the UPF at an attach point or leave it there. On the
 * UPF's own TUN or GTP device the link's hooks face the other way (what the
 * device receives, the UPF sent): sauron/bpf/loader.py pairs them. */
enum sauron_hook {
	SAURON_INGRESS = 1,
	SAURON_EGRESS = 2,
};

/* the qfi_stats row of a point that sees no QFIs */
#define SAURON_NO_QFI_ROW 255

/* The attach points, one row each: the only place that says what a point
 * is. The programs ask it through lib/point.h; the agent reads the same
 * rows as sauron.abi.points.AttachPoint. Columns:
 *
 * - name: SAURON_POINT_<name>; lower-case, the name the agent shows;
 * - id: the index of the point's rows in slice_stats and events, of its
 *   config.direction_mode and of its measurement programs. A new point
 *   takes the next id, so the others keep theirs;
 * - side: what its frames carry (enum sauron_side);
 * - hook: whether frames enter the UPF there or leave it (enum sauron_hook);
 * - direction: the direction it counts frames in unless configured
 *   otherwise (SAURON_DIRMODE_POINT). The point is where that direction
 *   enters the UPF (ingress) or leaves it (egress);
 * - qfi_row: its row in qfi_stats when it sees QFIs (GTP-U side; a new one
 *   takes the next free row), else SAURON_NO_QFI_ROW. */
#define SAURON_POINT_TABLE(ROW)                                                                    \
	ROW(N3_INGRESS, 0, SAURON_GTPU_SIDE, SAURON_INGRESS, SAURON_DIR_UPLINK, 0)                 \
	ROW(N3_EGRESS, 1, SAURON_GTPU_SIDE, SAURON_EGRESS, SAURON_DIR_DOWNLINK, 1)                 \
	ROW(N6_INGRESS, 2, SAURON_IP_SIDE, SAURON_INGRESS, SAURON_DIR_DOWNLINK, SAURON_NO_QFI_ROW) \
	ROW(N6_EGRESS, 3, SAURON_IP_SIDE, SAURON_EGRESS, SAURON_DIR_UPLINK, SAURON_NO_QFI_ROW)

#define SAURON_POINT_ID(name, id, side, hook, direction, qfi_row) SAURON_POINT_##name = id,
#define SAURON_POINT_ONE(name, id, side, hook, direction, qfi_row) +1
#define SAURON_POINT_HAS_QFI_ROW(name, id, side, hook, direction, qfi_row) \
	+((qfi_row) != SAURON_NO_QFI_ROW)

enum sauron_point {
	SAURON_POINT_TABLE(SAURON_POINT_ID)
	/* the points, and those with a row in qfi_stats */
	SAURON_POINTS = 0 SAURON_POINT_TABLE(SAURON_POINT_ONE),
	SAURON_QFI_POINTS = 0 SAURON_POINT_TABLE(SAURON_POINT_HAS_QFI_ROW),
};

/* How a point decides the direction of a frame. */
enum sauron_direction_mode {
	/* the point's own (its direction in SAURON_POINT_TABLE): an
	 * unconfigured point is right by default */
	SAURON_DIRMODE_POINT = 0,
	SAURON_DIRMODE_UPLINK = 1,
	SAURON_DIRMODE_DOWNLINK = 2,
	/* PDU Session Container type when present, else the UE address that
	 * matches a UE subnet (inner source: uplink, inner destination:
	 * downlink), else uplink. Used to replay captures of both directions. */
	SAURON_DIRMODE_AUTO = 3,
};

/* GTP-U message kinds counted per slice. */
enum sauron_msg_kind {
	SAURON_MSG_G_PDU = 0,
	SAURON_MSG_ECHO_REQUEST = 1,
	SAURON_MSG_ECHO_RESPONSE = 2,
	SAURON_MSG_END_MARKER = 3,
	SAURON_MSG_ERROR_INDICATION = 4,
	SAURON_MSG_OTHER = 5,
	SAURON_MSG_NOT_GTPU = 6, /* plain IP on the N6 side */
	SAURON_MSG_KINDS = 7,
};

/* Per-point event counters: frame categories first, then anomaly reasons.
 * Each frame counts once in exactly one category and in at most one anomaly
 * (the first one the parser meets). The programs count neither FRAMES nor
 * the categories of the frames they account per slice (GTPU, IP): those
 * are the sums of the other categories and of slice_stats' packets, which
 * the reader derives, so a well-formed frame never touches this map. */
enum sauron_event {
	SAURON_EV_FRAMES = 0,	      /* every frame the program ran on */
	SAURON_EV_NOT_IP = 1,	      /* ARP, LLDP, ... */
	SAURON_EV_IP_NOT_GTPU = 2,    /* IP that is not UDP 2152 (GTP-U side) */
	SAURON_EV_GTPU = 3,	      /* a GTPv1-U header parsed */
	SAURON_EV_IP = 4,	      /* an IP packet accounted (N6 side) */
	SAURON_EV_OUTER_FRAGMENT = 5, /* non-first outer IP fragment: no UDP header */

	SAURON_ANOMALY_FIRST = 8,
	SAURON_AN_ETH_TRUNCATED = 8,
	SAURON_AN_VLAN_TRUNCATED = 9,
	SAURON_AN_VLAN_TOO_DEEP = 10,
	SAURON_AN_IPV4_TRUNCATED = 11,
	SAURON_AN_IPV4_BAD_IHL = 12,
	SAURON_AN_IPV4_BAD_TOTAL_LENGTH = 13,
	SAURON_AN_IPV6_TRUNCATED = 14,
	SAURON_AN_IPV6_EXT_TRUNCATED = 15,
	SAURON_AN_IPV6_EXT_TOO_MANY = 16,
	SAURON_AN_UDP_TRUNCATED = 17,
	SAURON_AN_UDP_BAD_LENGTH = 18,
	SAURON_AN_GTPU_TRUNCATED = 19,
	SAURON_AN_GTPU_NOT_V1 = 20, /* UDP 2152 payload that is not GTPv1-U */
	SAURON_AN_GTPU_OPT_TRUNCATED = 21,
	SAURON_AN_GTPU_EXT_TRUNCATED = 22,
	SAURON_AN_GTPU_EXT_ZERO_LENGTH = 23,
	SAURON_AN_GTPU_EXT_CHAIN_TOO_LONG = 24,
	SAURON_AN_GTPU_PDU_CONTAINER_BAD = 25, /* PDU type neither DL nor UL */
	SAURON_AN_GTPU_LENGTH_MISMATCH = 26,
	SAURON_AN_INNER_NOT_IP = 27,
	SAURON_AN_INNER_TRUNCATED = 28,
	SAURON_AN_INNER_L4_TRUNCATED = 29,
	SAURON_AN_OUTER_FIRST_FRAGMENT = 30, /* parsed, but the datagram continues */
	SAURON_AN_IP_TRUNCATED = 31,	     /* IP total length runs past the frame */
	SAURON_EVENTS = 32,
};

/* The counter arrays (slice_stats, qfi_stats, events, teid_slots,
 * ue_slots) are CPU-major: CPU c's copy of row r is entry c * rows + r,
 * SAURON_CPUS being the possible CPUs (set by the loader). Each CPU writes
 * only its own rows, so no atomics are needed; unlike a per-CPU array's, a
 * lookup is an address computed inline rather than a pointer table's load
 * (one cache miss less in real traffic); and the arrays are mmapable, so
 * the agent reads them in place without a system call. */

/* slice_stats[cpu][(slice * SAURON_POINTS + point) * SAURON_DIRS + dir]:
 * 128 bytes, so a row is two whole cache lines of a page-aligned array, and
 * what a frame writes (packets, bytes, inner_bytes) sits in the first. The
 * most common kind of each side is not counted but derived: msg[G_PDU] at
 * the GTP-U side's points and msg[NOT_GTPU] at the IP side's are the
 * packets less the other kinds. */
struct sauron_slice_stats {
	__u64 packets;
	__u64 bytes;	   /* whole frame, L2 header included */
	__u64 inner_bytes; /* inner IP packet (G-PDU payload, or the N6 IP packet) */
	__u64 malformed;   /* frames of this slice that carried an anomaly */
	__u64 msg[SAURON_MSG_KINDS];
	__u64 reserved[5];
};

/* qfi_stats[cpu][((slice * SAURON_QFI_POINTS + qfi_row) * SAURON_MAX_QFI + qfi) * SAURON_DIRS + dir],
 * qfi_row being the point's in SAURON_POINT_TABLE. */
struct sauron_traffic {
	__u64 packets;
	__u64 bytes;
};

/* teid_stats and ue_stats values (per-CPU LRU hashes). Besides counting, an
 * entry caches the slice its first packet was classified to: a PDU session
 * (one TEID, one UE address) belongs to one slice, so later packets skip the
 * classification lookups. The cache holds while rules_generation equals the
 * agent's (sauron_config), which the agent bumps whenever it changes a rule.
 * Activity per interval is the change of the counters, read by the agent. */
struct sauron_session_stats {
	__u64 packets[SAURON_DIRS];
	__u64 bytes[SAURON_DIRS];
	__u32 slice_id;
	__u32 rules_generation;
	__u32 qfi;   /* last QFI seen, SAURON_NO_QFI when none */
	__u32 flags; /* SAURON_SESSION_HAS_UE */
	__u8 ue_addr[16];
};

#define SAURON_SESSION_HAS_UE 1
#define SAURON_SESSION_VALID 2
/* teid_slots only, for the security checks (lib/security.h): the TEID had a
 * rule when the slot was filled; its uplink source (ue_addr) passed the
 * spoofing check; its outer IPv4 source (peer4) is a known peer */
#define SAURON_SESSION_TEID_KNOWN 4
#define SAURON_SESSION_SRC_OK 8
#define SAURON_SESSION_PEER_OK 16

/* teid_slots[cpu][hash(teid)]: a direct-mapped cache of the sessions each
 * CPU saw most recently, so that a G-PDU of a known tunnel touches one
 * cache line: its slot carries the session's slice, the rules generation
 * it was classified under, and its counters. A slot taken over by another
 * TEID first adds its counts to that TEID's teid_stats entry; the agent
 * adds the slots it finds valid to teid_stats, so no count is lost or
 * counted twice. */
struct sauron_teid_slot {
	__u32 teid;
	__u32 rules_generation;
	__u8 slice_id;
	__u8 qfi;    /* last QFI seen, SAURON_NO_QFI when none */
	__u16 flags; /* SAURON_SESSION_* */
	__u32 peer4; /* the outer IPv4 source SAURON_SESSION_PEER_OK vouches for */
	__u64 packets[SAURON_DIRS];
	__u64 bytes[SAURON_DIRS];
	__u8 ue_addr[16];
};

/* ue_slots[cpu][hash(UE address)]: the same in front of ue_stats, for the
 * N6 side, whose sessions are UE addresses. */
struct sauron_ue_slot {
	__u8 ue_addr[16];
	__u32 rules_generation;
	__u8 slice_id;
	__u8 reserved8;
	__u16 flags; /* SAURON_SESSION_VALID */
	__u64 reserved;
	__u64 packets[SAURON_DIRS];
	__u64 bytes[SAURON_DIRS];
};

struct sauron_teid_range_key {
	__u32 prefixlen;
	__u32 teid; /* network byte order, so prefixes run from the high bits */
};

struct sauron_ipv4_lpm_key {
	__u32 prefixlen;
	__u32 addr; /* network byte order */
};

struct sauron_ipv6_lpm_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* UE address as 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d). */
struct sauron_ue_key {
	__u8 addr[16];
};

/* config[0]: written by the agent. */
struct sauron_config {
	__u32 direction_mode[SAURON_POINTS]; /* enum sauron_direction_mode */
	__u32 rules_generation;
	__u32 measure; /* SAURON_MEASURE_* bits */
	/* Egress points look a fingerprint up only when (hash & mask) == 0: the
	 * smallest sampling mask of any slice, since the slice of a NATed
	 * packet is not known there. */
	__u32 transit_lookup_mask;
	/* Only TCP timestamps with (value & mask) == 0 are stamped and looked
	 * up: a cheap per-flow rate limit (Linux ticks them once a ms). */
	__u32 rtt_ts_mask;
	/* A transit stamp this old is lost: a stamp that needs its slot takes
	 * it over and counts it expired (0: never; the agent's sweep alone). */
	__u64 transit_expiry_ns;
};

/* What the programs measure besides counting (sauron_config.measure). The
 * transit stamps need both sides of the UPF watched: the agent turns them on
 * only then, or every stamp would expire as loss. */
#define SAURON_MEASURE_TRANSIT 1
#define SAURON_MEASURE_RTT 2
#define SAURON_MEASURE_SEQUENCE 4
#define SAURON_MEASURE_RETRANS 8
/* Evidence: the headers of the frames of the slices flagged
 * SAURON_SLICE_EVIDENCE go to evidence_ring (while a slice is diagnosed). */
#define SAURON_MEASURE_EVIDENCE 16
/* The security checks on uplink G-PDUs at N3/N9 ingress (lib/security.h);
 * PEERS: known_peers lists the gNBs and peer UPFs, so an outer source not in
 * it is counted; PROTECTED: protected4/6 hold the core's own prefixes. */
#define SAURON_MEASURE_SECURITY 32
#define SAURON_MEASURE_PEERS 64
#define SAURON_MEASURE_PROTECTED 128

/* slice_config[slice]: per-slice measurement settings, written by the agent.
 * A packet is stamped when (fingerprint hash & transit_sample_mask) == 0,
 * so a mask of 2^k - 1 samples one packet in 2^k; ingress and egress
 * compute the same hash, so both take the same decision. */
struct sauron_slice_config {
	__u32 transit_sample_mask;
	__u32 flags; /* SAURON_SLICE_TRANSIT: stamp this slice's packets */
};

#define SAURON_SLICE_TRANSIT 1
#define SAURON_SLICE_EVIDENCE 2

/* security_stats[cpu][slice * SAURON_SEC_KINDS + kind]: uplink G-PDUs at
 * N3/N9 ingress that failed a check, per slice (the one the frame was
 * classified into) and kind. A frame can fail several. */
enum sauron_security_kind {
	/* the inner source is no address of the TEID's session (or, the
	 * session's addresses unknown, outside its slice's UE subnets) */
	SAURON_SEC_UE_SOURCE_SPOOFED = 0,
	/* the TEID matched no session and no catalog TEID rule */
	SAURON_SEC_UNKNOWN_TEID = 1,
	/* the inner packet is UDP to or from 2152 or 2123 carrying a GTP header */
	SAURON_SEC_GTP_IN_GTP = 2,
	/* the inner destination is in a protected prefix (the core's networks) */
	SAURON_SEC_INNER_TO_CORE = 3,
	/* the outer source is no known gNB or peer UPF */
	SAURON_SEC_UNKNOWN_PEER = 4,
	SAURON_SEC_KINDS = 5,
};

/* teid_session[TEID]: every UPF TEID of a learned session (PFCP, SMF feed),
 * with the session's UE addresses when known (flags 0: none), for the
 * checks: the TEID is known, and the inner source must be the session's.
 * IPv6 is a prefix: a UE forms its own interface identifiers (privacy
 * addresses) inside the one it was given. */
struct sauron_teid_session {
	__u32 flags; /* SAURON_TEID_SESSION_* */
	__u32 ue6_prefixlen;
	__u8 ue4[4];
	__u8 ue6[16];
};

#define SAURON_TEID_SESSION_V4 1
#define SAURON_TEID_SESSION_V6 2
#define SAURON_MAX_KNOWN_PEERS 4096
#define SAURON_MAX_PROTECTED 1024

/* security_seen: what the agent's detections read (teid_scan, spoofing_ue),
 * one entry per kind, TEID and address: the outer source for
 * SAURON_SEC_UNKNOWN_TEID and SAURON_SEC_UNKNOWN_PEER, the inner source for
 * SAURON_SEC_UE_SOURCE_SPOOFED. LRU: a flood cannot fill it for good. */
struct sauron_security_seen_key {
	__u32 kind;
	__u32 teid;
	__u8 addr[16];
};

struct sauron_security_seen {
	__u64 first_ns;
	__u64 last_ns;
	__u64 count;
	__u32 slice_id;
	__u32 reserved;
	__u8 peer[16]; /* the outer source of the last one */
};

#define SAURON_SECURITY_SEEN_ENTRIES 8192

/* evidence_ring: one record per GTP-U frame of a slice being diagnosed, its
 * first SNAPLEN bytes (outer and inner headers). The ring is a BPF ring
 * buffer the agent drains each interval; a frame that finds it full is
 * counted in evidence_missed, never waited for. */
#define SAURON_EVIDENCE_SNAPLEN 128
#define SAURON_EVIDENCE_RING_PAGES 512 /* 2 MiB of 4 KiB pages: ~13 000 frames */

struct sauron_evidence {
	__u64 time_ns;	 /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 frame_len; /* the frame's length */
	__u32 slice_id;
	__u32 teid;
	__u16 captured; /* bytes of data that hold the frame's start */
	__u8 point;
	__u8 direction;
	__u8 data[SAURON_EVIDENCE_SNAPLEN];
};

/* Histograms, log-linear. A value v at or above 2^MIN_SHIFT falls in octave
 * k = floor(log2 v) and sub-bucket s = the SUB_BITS bits after its leading
 * one; its bucket is 1 + (k - MIN_SHIFT) * SUB_BUCKETS + s, so a bucket is
 * at most 1/SUB_BUCKETS (12.5 %) of its lower bound wide. Bucket 0 holds
 * values under 2^MIN_SHIFT, the last bucket values at or above 2^MAX_SHIFT. */
#define SAURON_HIST_SUB_BITS 3
#define SAURON_HIST_SUB_BUCKETS 8
/* latencies in nanoseconds: 1.024 us to 68.7 s */
#define SAURON_LATENCY_MIN_SHIFT 10
#define SAURON_LATENCY_MAX_SHIFT 36
#define SAURON_LATENCY_BUCKETS 210 /* (36 - 10) * 8 + 2 */
/* GTP-U sequence gaps in packets: 1 to 65535 */
#define SAURON_GAP_MIN_SHIFT 0
#define SAURON_GAP_MAX_SHIFT 16
#define SAURON_GAP_BUCKETS 130 /* (16 - 0) * 8 + 2 */

enum sauron_latency_metric {
	/* inside the UPF: N3 in -> N6 out (uplink), N6 in -> N3 out (downlink) */
	SAURON_LAT_TRANSIT = 0,
	/* UPF <-> UE, from inner TCP seen on N3; kept under the downlink */
	SAURON_LAT_RAN_RTT = 1,
	/* UPF <-> server, from inner TCP seen on N6; kept under the uplink */
	SAURON_LAT_DN_RTT = 2,
	/* |transit - the previous sample's transit|, per slice, direction and CPU */
	SAURON_LAT_TRANSIT_JITTER = 3,
	SAURON_LAT_METRICS = 4,
};

/* latency_hist[(slice * SAURON_LAT_METRICS + metric) * SAURON_DIRS + dir] and
 * peer_rtt values (per-CPU). */
struct sauron_latency_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 buckets[SAURON_LATENCY_BUCKETS];
};

/* The inner packet's fields that survive decapsulation and N6 NAT: the far
 * end (uplink destination, downlink source), never the UE's address or port
 * nor TTL or checksums. */
struct sauron_fingerprint {
	__u8 remote[16];
	__u16 remote_port;
	__u8 proto;
	__u8 direction;
	__u32 ip_id;	/* IPv4 identification or IPv6 flow label */
	__u32 length;	/* inner IP total length */
	__u32 l4_a;	/* TCP sequence; ICMP type, code and echo sequence; else payload word 0 */
	__u32 l4_b;	/* TCP acknowledgment; else the next payload word */
	__u32 reserved; /* zero: whole 8-byte words, compared as such */
} __attribute__((aligned(8)));

struct sauron_stamp {
	__u64 ns; /* bpf_ktime_get_ns() at the first point */
	__u32 slice_id;
	__u32 reserved;
};

/* transit_slots[index]: pending transit stamps, one cache line each; a
 * fingerprint's hash picks a pair of slots side by side (two ways). `state` is generation << 2 |
 * phase: a stamp takes a FREE slot by compare-and-swap to WRITING, fills it
 * and publishes it PENDING with the next generation; a match or the expiry
 * frees it by compare-and-swap from the exact state it read, so whoever
 * frees it first decides, and a slot refilled meanwhile (new generation) is
 * never freed by mistake. */
struct sauron_transit_slot {
	__u64 state;
	__u64 ns; /* bpf_ktime_get_ns() at the first point */
	struct sauron_fingerprint fp;
	__u32 slice_id;
	__u32 reserved;
};

#define SAURON_TRANSIT_FREE 0
#define SAURON_TRANSIT_WRITING 1
#define SAURON_TRANSIT_PENDING 2
#define SAURON_TRANSIT_PHASE 3
#define SAURON_TRANSIT_GENERATION 4 /* the state's generation unit */

/* One run of the expiry program frees at most this many slots, each given
 * as (index, the PENDING state the agent read) in the test-run frame. */
#define SAURON_TRANSIT_EXPIRE_BATCH 64

#define SAURON_TRANSIT_STAMPS 65536

/* measure_stats[slice * SAURON_DIRS + dir] (per-CPU). seq_lost and
 * seq_gaps may be decremented on another CPU than the one that counted
 * them (a late packet fills a gap): sums are taken modulo 2^64. */
struct sauron_measure_stats {
	__u64 transit_stamped;
	__u64 transit_matched;
	__u64 transit_duplicate;  /* a stamp with that fingerprint was pending */
	__u64 transit_table_full; /* both its slots held other live stamps: not stamped */
	__u64 transit_late;	  /* matched after its stamp expired */
	__u64 transit_aggregate;  /* sampled but too long to stamp: a GRO aggregate */
	__u64 transit_expired;	  /* stamps never matched within the expiry: lost */
	__u64 tcp_data_segments;
	__u64 tcp_retransmissions;
	__u64 rtt_stamped;
	__u64 rtt_samples;
	__u64 seq_received;
	__u64 seq_lost;
	__u64 seq_reordered;
	__u64 seq_duplicates;
	__u64 seq_resyncs; /* jumps too large to be loss: numbering restarted */
	__u64 seq_gaps[SAURON_GAP_BUCKETS];
};

/* GTP-U sequence numbers (S flag) per tunnel and direction. */
#define SAURON_SEQ_ENTRIES 65536
/* a forward jump beyond this, or a backward one beyond MAX_MISORDER, is a
 * restart of the numbering rather than loss or reordering */
#define SAURON_SEQ_MAX_DROPOUT 3000
#define SAURON_SEQ_MAX_MISORDER 1000
#define SAURON_SEQ_WINDOW 64

/* A tunnel is its TEID at its receiver (TS 29.281): the outer destination. */
struct sauron_seq_key {
	__u32 teid;
	__u32 direction;
	__u8 receiver[16];
};

struct sauron_seq_state {
	__u64 received; /* distinct packets */
	__u64 lost;	/* passed over and not (yet) arrived */
	__u64 reordered;
	__u64 duplicates;
	__u64 window;	/* bit i: sequence number expected - 1 - i arrived */
	__u32 expected; /* next sequence number in order */
	__u32 slice_id;
	__u32 gap_start;  /* first number of the most recent gap */
	__u32 gap_length; /* 0 when it has been filled */
};

/* Round-trip stamps: TCP segments going out towards one side, matched by
 * the reply that echoes their timestamp or acknowledges their SYN. */
enum sauron_rtt_kind {
	SAURON_RTT_RAN_TIMESTAMP = 0,
	SAURON_RTT_RAN_HANDSHAKE = 1,
	SAURON_RTT_DN_TIMESTAMP = 2,
	SAURON_RTT_DN_HANDSHAKE = 3,
};

#define SAURON_RTT_STAMPS 65536

struct sauron_rtt_key {
	__u8 local[16]; /* the UE's side of the flow (its NAT address on N6) */
	__u8 remote[16];
	__u16 local_port;
	__u16 remote_port;
	__u32 echo; /* the TSval the reply will echo, or the ACK number it will carry */
	__u32 kind; /* enum sauron_rtt_kind */
};

/* TCP flows followed for retransmissions (inner TCP on N3). */
#define SAURON_TCP_FLOWS 65536

struct sauron_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
};

struct sauron_flow_state {
	__u32 next_seq; /* highest sequence number sent + 1 */
	__u32 slice_id;
};

/* GTP-U echo round trips per peer: our request to its response is the path
 * RTT; its request to our response is how fast this node answers. */
enum sauron_echo_initiator {
	SAURON_ECHO_LOCAL = 0,
	SAURON_ECHO_PEER = 1,
};

#define SAURON_ECHO_STAMPS 1024
#define SAURON_MAX_PEERS 256

struct sauron_echo_key {
	__u8 peer[16];
	__u32 seq;
	__u32 initiator; /* enum sauron_echo_initiator */
};

struct sauron_peer_key {
	__u8 peer[16];
	__u32 initiator;
	__u32 reserved;
};

/* What the parser concluded about the last frame; written only by builds
 * with SAURON_RECORD_LAST (the differential tests), never in production. */
struct sauron_parse_result {
	__u32 event;   /* category: SAURON_EV_* */
	__u32 anomaly; /* first anomaly, 0 when none */
	__u32 teid;
	__u32 slice_id;
	__u32 direction;
	__u32 msg_kind;	   /* enum sauron_msg_kind */
	__u32 qfi;	   /* SAURON_NO_QFI when no PDU Session Container */
	__u32 pdu_type;	   /* 0 DL, 1 UL, 255 none */
	__u32 inner_proto; /* IPPROTO_* of the inner packet, 0 when none */
	__u16 inner_sport;
	__u16 inner_dport;
	__u32 ext_headers; /* GTP-U extension headers walked */
	__u32 gtp_seq;	   /* sequence number when the S flag is set */
	__u32 flags;	   /* SAURON_RES_* */
	__u8 ue_addr[16];
	__u32 security; /* a bit per failed check (1 << SAURON_SEC_*) */
	__u8 peer[16];	/* the outer source, when the checks ran */
};

#define SAURON_RES_HAS_SEQ 1
#define SAURON_RES_HAS_UE 2

#endif /* SAURON_SHARED_H */
