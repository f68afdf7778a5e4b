/* Per-slice accounting: CPU-major arrays for the counters the agent sums
 * (see sauron_shared.h), and LRU hashes for the sessions (TEIDs, UE
 * addresses) that fall out of the direct-mapped slots. A CPU writes only its
 * own rows of the arrays (a program runs to completion on one CPU), so they
 * need no atomics; the session hashes are shared by every CPU, one copy an
 * entry, and take their counts with atomic adds: they are written only when
 * a slot is taken over, and the agent reads one copy a session instead of
 * one a CPU (a 64-CPU node would otherwise copy 64 times the table). */
#ifndef SAURON_LIB_ACCOUNT_H
#define SAURON_LIB_ACCOUNT_H

#include "sauron_shared.h"
#include "lib/point.h"
#include "lib/kept.h"

#ifndef SAURON_CPUS
#error "SAURON_CPUS, the number of possible CPUs, is set by the loader"
#endif

_Static_assert(SAURON_MAX_SLICES <= 256, "slots keep the slice id in a byte");
_Static_assert(sizeof(struct sauron_slice_stats) == 128, "a slice row is two cache lines");
_Static_assert(sizeof(struct sauron_teid_slot) == 64, "a TEID slot is one cache line");
_Static_assert(sizeof(struct sauron_ue_slot) == 64, "a UE slot is one cache line");

#define SLICE_STATS_ROWS (SAURON_MAX_SLICES * SAURON_POINTS * SAURON_DIRS)
#define QFI_STATS_ROWS (SAURON_MAX_SLICES * SAURON_QFI_POINTS * SAURON_MAX_QFI * SAURON_DIRS)
#define EVENT_ROWS (SAURON_POINTS * SAURON_EVENTS)

/* An array holding `rows` entries for every possible CPU, mapped by the agent. */
/* the formatter reads the product in bcc's macro as a pointer */
/* clang-format off */
#define CPU_ARRAY(name, type, rows) \
	SAURON_KEPT_TABLE("array", __u32, type, name, SAURON_CPUS * (rows), BPF_F_MMAPABLE)
/* clang-format on */

CPU_ARRAY(slice_stats, struct sauron_slice_stats, SLICE_STATS_ROWS);
CPU_ARRAY(qfi_stats, struct sauron_traffic, QFI_STATS_ROWS);
CPU_ARRAY(events, __u64, EVENT_ROWS);
CPU_ARRAY(teid_slots, struct sauron_teid_slot, SAURON_TEID_SLOTS);
CPU_ARRAY(ue_slots, struct sauron_ue_slot, SAURON_UE_SLOTS);
SAURON_KEPT_TABLE("lru_hash", __u32, struct sauron_session_stats, teid_stats,
		  SAURON_TEID_STATS_ENTRIES, 0);
SAURON_KEPT_TABLE("lru_hash", struct sauron_ue_key, struct sauron_session_stats, ue_stats,
		  SAURON_UE_STATS_ENTRIES, 0);
SAURON_KEPT_TABLE("array", int, struct sauron_config, config, 1, 0);

/* This CPU's entry `row` of a CPU-major array of `rows` entries a CPU. */
static __always_inline __u32 cpu_row(__u32 rows, __u32 row)
{
	return bpf_get_smp_processor_id() * rows + row;
}

static __always_inline void count_event(__u32 point, __u32 event)
{
	__u32 key = cpu_row(EVENT_ROWS, point * SAURON_EVENTS + event);
	__u64 *value = events.lookup(&key);
	if (value)
		*value += 1;
}

static __always_inline void count_slice(__u32 point, __u32 slice_id, __u32 dir, __u32 msg_kind,
					__u64 bytes, __u64 inner_bytes, int malformed)
{
	__u32 key =
		cpu_row(SLICE_STATS_ROWS, (slice_id * SAURON_POINTS + point) * SAURON_DIRS + dir);
	struct sauron_slice_stats *s = slice_stats.lookup(&key);
	if (!s)
		return;
	s->packets += 1;
	s->bytes += bytes;
	s->inner_bytes += inner_bytes;
	if (malformed)
		s->malformed += 1;
	/* G-PDUs and plain IP are derived by the reader (sauron_shared.h) */
	if (msg_kind != SAURON_MSG_G_PDU && msg_kind < SAURON_MSG_NOT_GTPU)
		s->msg[msg_kind] += 1;
}

static __always_inline void count_qfi(__u32 point, __u32 slice_id, __u32 qfi, __u32 dir,
				      __u64 bytes)
{
	__u32 row = point_qfi_row(point);
	if (row == SAURON_NO_QFI_ROW || qfi >= SAURON_MAX_QFI)
		return;
	__u32 key = cpu_row(
		QFI_STATS_ROWS,
		((slice_id * SAURON_QFI_POINTS + row) * SAURON_MAX_QFI + qfi) * SAURON_DIRS + dir);
	struct sauron_traffic *t = qfi_stats.lookup(&key);
	if (!t)
		return;
	t->packets += 1;
	t->bytes += bytes;
}

/* A session's counts to add, with the classification its entry caches. */
static __always_inline void session_counts(struct sauron_session_stats *s, const __u64 packets[2],
					   const __u64 bytes[2], __u32 slice_id, __u32 generation,
					   __u32 qfi, const __u8 ue_addr[16], int has_ue)
{
	s->packets[0] = packets[0];
	s->packets[1] = packets[1];
	s->bytes[0] = bytes[0];
	s->bytes[1] = bytes[1];
	s->slice_id = slice_id;
	s->rules_generation = generation;
	s->qfi = qfi;
	s->flags = has_ue ? SAURON_SESSION_HAS_UE : 0;
	__builtin_memcpy(s->ue_addr, ue_addr, 16);
}

/* Adds counts to an entry every CPU shares; the classification is written
 * as it comes (CPUs racing here write the same session's). */
static __always_inline void add_to_session(struct sauron_session_stats *s,
					   const struct sauron_session_stats *add)
{
	__sync_fetch_and_add(&s->packets[0], add->packets[0]);
	__sync_fetch_and_add(&s->packets[1], add->packets[1]);
	__sync_fetch_and_add(&s->bytes[0], add->bytes[0]);
	__sync_fetch_and_add(&s->bytes[1], add->bytes[1]);
	s->slice_id = add->slice_id;
	s->rules_generation = add->rules_generation;
	s->qfi = add->qfi;
	s->flags = add->flags;
	__builtin_memcpy(s->ue_addr, add->ue_addr, 16);
}

/* Into a TEID's teid_stats entry, created when missing; a CPU that loses
 * the race to create it adds to the one that won. */
static __always_inline void add_to_teid(__u32 teid, const struct sauron_session_stats *add)
{
	struct sauron_session_stats *s = teid_stats.lookup(&teid);
	if (!s && teid_stats.insert(&teid, (void *)add) != 0)
		s = teid_stats.lookup(&teid);
	if (s)
		add_to_session(s, add);
}

/* The same for a UE address's ue_stats entry. */
static __always_inline void add_to_ue(const __u8 ue_addr[16],
				      const struct sauron_session_stats *add)
{
	struct sauron_ue_key key;
	__builtin_memcpy(key.addr, ue_addr, 16);
	struct sauron_session_stats *s = ue_stats.lookup(&key);
	if (!s && ue_stats.insert(&key, (void *)add) != 0)
		s = ue_stats.lookup(&key);
	if (s)
		add_to_session(s, add);
}

/* One frame counted straight into teid_stats or ue_stats (replay's AUTO
 * mode, which decides the direction per frame and so keeps no slot). */
static __always_inline void count_unslotted(__u32 teid, __u32 slice_id, __u32 generation, __u32 dir,
					    __u64 bytes, __u32 qfi, const __u8 ue_addr[16],
					    int has_ue, int by_teid)
{
	/* two constants, not an index: a variable index into a stack array
	 * becomes pointer arithmetic the verifier refuses */
	__u32 down = dir & 1;
	__u64 packets[2] = { !down, down }, octets[2] = { down ? 0 : bytes, down ? bytes : 0 };
	struct sauron_session_stats add;

	session_counts(&add, packets, octets, slice_id, generation, qfi, ue_addr, has_ue);
	if (by_teid)
		add_to_teid(teid, &add);
	else
		add_to_ue(ue_addr, &add);
}

/* This CPU's slot for a TEID. Fibonacci hashing: sequentially allocated
 * TEIDs spread over the slots. */
static __always_inline struct sauron_teid_slot *teid_slot_of(__u32 teid)
{
	__u32 key =
		cpu_row(SAURON_TEID_SLOTS, (teid * 2654435761u) >> (32 - SAURON_TEID_SLOT_BITS));
	return teid_slots.lookup(&key);
}

/* Moves a slot's counts into its TEID's teid_stats entry. */
static __always_inline void flush_teid_slot(struct sauron_teid_slot *slot)
{
	struct sauron_session_stats add;
	session_counts(&add, slot->packets, slot->bytes, slot->slice_id, slot->rules_generation,
		       slot->qfi, slot->ue_addr, slot->flags & SAURON_SESSION_HAS_UE);
	add_to_teid(slot->teid, &add);
}

static __always_inline void fill_teid_slot(struct sauron_teid_slot *slot, __u32 teid,
					   __u32 slice_id, __u32 generation, const __u8 ue_addr[16],
					   int has_ue, int teid_known)
{
	slot->teid = teid;
	slot->slice_id = slice_id;
	slot->rules_generation = generation;
	slot->flags = SAURON_SESSION_VALID | (has_ue ? SAURON_SESSION_HAS_UE : 0) |
		      (teid_known ? SAURON_SESSION_TEID_KNOWN : 0);
	slot->peer4 = 0;
	slot->packets[0] = 0;
	slot->packets[1] = 0;
	slot->bytes[0] = 0;
	slot->bytes[1] = 0;
	__builtin_memcpy(slot->ue_addr, ue_addr, 16);
}

/* This CPU's slot for a UE address: the words folded, then Fibonacci
 * hashing (an IPv4-mapped address varies in its last word only). */
static __always_inline struct sauron_ue_slot *ue_slot_of(const __u8 ue_addr[16])
{
	const __u32 *w = (const __u32 *)ue_addr;
	__u32 folded = w[0] ^ w[1] ^ w[2] ^ bpf_ntohl(w[3]);
	__u32 key = cpu_row(SAURON_UE_SLOTS, (folded * 2654435761u) >> (32 - SAURON_UE_SLOT_BITS));
	return ue_slots.lookup(&key);
}

static __always_inline int same_ue(const __u8 a[16], const __u8 b[16])
{
	const __u32 *x = (const __u32 *)a;
	const __u32 *y = (const __u32 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* Moves a UE slot's counts into its address's ue_stats entry. */
static __always_inline void flush_ue_slot(struct sauron_ue_slot *slot)
{
	struct sauron_session_stats add;
	session_counts(&add, slot->packets, slot->bytes, slot->slice_id, slot->rules_generation,
		       SAURON_NO_QFI, slot->ue_addr, 1);
	add_to_ue(slot->ue_addr, &add);
}

static __always_inline void fill_ue_slot(struct sauron_ue_slot *slot, const __u8 ue_addr[16],
					 __u32 slice_id, __u32 generation)
{
	__builtin_memcpy(slot->ue_addr, ue_addr, 16);
	slot->slice_id = slice_id;
	slot->rules_generation = generation;
	slot->flags = SAURON_SESSION_VALID;
	slot->packets[0] = 0;
	slot->packets[1] = 0;
	slot->bytes[0] = 0;
	slot->bytes[1] = 0;
}

static __always_inline const struct sauron_config *agent_config(void)
{
	__u32 zero = 0;
	return config.lookup(&zero);
}

#endif /* SAURON_LIB_ACCOUNT_H */
