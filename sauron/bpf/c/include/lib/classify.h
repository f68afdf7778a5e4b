/* Slice classification: TEID (exact, then range), UE address (IPv4/IPv6
 * subnets), QFI rule, else slice 0. The agent fills these maps from the
 * catalog and, later, from the control plane. */
#ifndef SAURON_LIB_CLASSIFY_H
#define SAURON_LIB_CLASSIFY_H

#include "sauron_shared.h"
#include "lib/kept.h"

SAURON_KEPT_TABLE("hash", __u32, __u32, teid_slice, SAURON_MAX_TEIDS, 0);
SAURON_KEPT_TABLE("lpm_trie", struct sauron_teid_range_key, __u32, teid_range_slice,
		  SAURON_MAX_TEID_RANGES, BPF_F_NO_PREALLOC);
SAURON_KEPT_TABLE("lpm_trie", struct sauron_ipv4_lpm_key, __u32, ue4_slice, SAURON_MAX_UE_RULES,
		  BPF_F_NO_PREALLOC);
SAURON_KEPT_TABLE("lpm_trie", struct sauron_ipv6_lpm_key, __u32, ue6_slice, SAURON_MAX_UE_RULES,
		  BPF_F_NO_PREALLOC);
/* 0 means "no rule": slice 0 is where unmatched traffic goes anyway */
SAURON_KEPT_TABLE("array", int, __u32, qfi_slice, SAURON_MAX_QFI, 0);

static __always_inline __u32 bounded_slice(__u32 slice_id)
{
	return slice_id < SAURON_MAX_SLICES ? slice_id : SAURON_UNCLASSIFIED_SLICE;
}

/* Returns 1 and the slice when the TEID is known. */
static __always_inline int slice_of_teid(__u32 teid, __u32 *slice_id)
{
	__u32 *hit = teid_slice.lookup(&teid);
	if (hit) {
		*slice_id = bounded_slice(*hit);
		return 1;
	}
	struct sauron_teid_range_key key = { .prefixlen = 32, .teid = bpf_htonl(teid) };
	hit = teid_range_slice.lookup(&key);
	if (hit) {
		*slice_id = bounded_slice(*hit);
		return 1;
	}
	return 0;
}

static __always_inline int is_ipv4_mapped(const __u8 addr[16])
{
	const __u32 *words = (const __u32 *)addr;
	return words[0] == 0 && words[1] == 0 && words[2] == bpf_htonl(0xffff);
}

/* Returns 1 and the slice when the address falls in a UE subnet. */
static __always_inline int slice_of_ue(const __u8 addr[16], __u32 *slice_id)
{
	__u32 *hit;

	if (is_ipv4_mapped(addr)) {
		struct sauron_ipv4_lpm_key key = { .prefixlen = 32 };
		__builtin_memcpy(&key.addr, &addr[12], 4);
		hit = ue4_slice.lookup(&key);
	} else {
		struct sauron_ipv6_lpm_key key = { .prefixlen = 128 };
		__builtin_memcpy(key.addr, addr, 16);
		hit = ue6_slice.lookup(&key);
	}
	if (!hit)
		return 0;
	*slice_id = bounded_slice(*hit);
	return 1;
}

static __always_inline int slice_of_qfi(__u32 qfi, __u32 *slice_id)
{
	if (qfi >= SAURON_MAX_QFI)
		return 0;
	__u32 *hit = qfi_slice.lookup(&qfi);
	if (!hit || *hit == 0)
		return 0;
	*slice_id = bounded_slice(*hit);
	return 1;
}

#endif /* SAURON_LIB_CLASSIFY_H */
