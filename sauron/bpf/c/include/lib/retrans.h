/* Inner TCP retransmissions per slice, the loss signal when GTP-U carries no
 * sequence numbers: a data segment that ends at or before the highest
 * sequence number already seen on its flow was sent before. Reordering
 * looks the same and is counted with it. */
#ifndef SAURON_LIB_RETRANS_H
#define SAURON_LIB_RETRANS_H

#include "sauron_shared.h"
#include "lib/parse.h"
#include "lib/l4.h"
#include "lib/measure.h"

SAURON_KEPT_TABLE("lru_hash", struct sauron_flow_key, struct sauron_flow_state, tcp_flows,
		  SAURON_TCP_FLOWS, 0);

static __always_inline void track_retransmissions(const struct sauron_config *cfg,
						  const struct ip_view *ip,
						  const struct l4_facts *t, __u32 slice_id,
						  __u32 dir)
{
	if (!measuring(cfg, SAURON_MEASURE_RETRANS) || t->proto != IPPROTO_TCP || !t->ok)
		return;
	__u32 len = t->tcp_payload;
	if (t->tcp_flags & (TCP_FLAG_SYN_BIT | TCP_FLAG_FIN_BIT))
		len += 1;
	if (len == 0)
		return;
	struct sauron_measure_stats *m = measure_of(slice_id, dir);
	if (!m)
		return;
	m->tcp_data_segments += 1;
	struct sauron_flow_key key = {};
	__builtin_memcpy(key.saddr, ip->saddr, 16);
	__builtin_memcpy(key.daddr, ip->daddr, 16);
	key.sport = t->sport;
	key.dport = t->dport;
	__u32 end = t->tcp_seq + len;
	struct sauron_flow_state *flow = tcp_flows.lookup(&key);
	if (!flow) {
		struct sauron_flow_state fresh = { .next_seq = end, .slice_id = slice_id };
		tcp_flows.update(&key, &fresh);
		return;
	}
	if ((__s32)(end - flow->next_seq) <= 0) {
		m->tcp_retransmissions += 1;
		return;
	}
	flow->next_seq = end;
}

#endif /* SAURON_LIB_RETRANS_H */
