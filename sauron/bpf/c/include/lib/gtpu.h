/* GTPv1-U (TS 29.281): the mandatory header, the optional sequence / N-PDU /
 * next-extension fields, and the extension-header chain walked by each
 * header's own length field, with the PDU Session Container (TS 38.415) read
 * wherever it stands in the chain. */
#ifndef SAURON_LIB_GTPU_H
#define SAURON_LIB_GTPU_H

#include "lib/parse.h"

#define GTPU_FLAG_PN 0x01
#define GTPU_FLAG_S 0x02
#define GTPU_FLAG_E 0x04
#define GTPU_FLAG_PT 0x10
#define GTPU_VERSION_1 0x20
#define GTPU_VERSION_MASK 0xe0

#define GTPU_ECHO_REQUEST 1
#define GTPU_ECHO_RESPONSE 2
#define GTPU_ERROR_INDICATION 26
#define GTPU_END_MARKER 254
#define GTPU_G_PDU 255

#define GTPU_EXT_PDU_SESSION_CONTAINER 0x85
#define GTPU_PDU_TYPE_NONE 255

struct gtpu_hdr {
	__u8 flags;
	__u8 msg_type;
	__be16 length; /* bytes after the mandatory 8-byte header */
	__be32 teid;
} __attribute__((packed));

struct gtpu_opt {
	__be16 seq;
	__u8 npdu;
	__u8 next_ext;
} __attribute__((packed));

struct gtpu_view {
	__u32 teid;
	__u32 seq;
	__u8 msg_type;
	__u8 flags;
	__u8 qfi;      /* SAURON_NO_QFI without a PDU Session Container */
	__u8 pdu_type; /* GTPU_PDU_TYPE_NONE without a PDU Session Container */
	__u8 ext_headers;
	__u8 payload_ok; /* the cursor stands on the T-PDU */
};

/* An if-chain, not a switch: BPF has no indirect jumps for a jump table. */
static __always_inline __u32 gtpu_msg_kind(__u8 msg_type)
{
	if (msg_type == GTPU_G_PDU)
		return SAURON_MSG_G_PDU;
	if (msg_type == GTPU_ECHO_REQUEST)
		return SAURON_MSG_ECHO_REQUEST;
	if (msg_type == GTPU_ECHO_RESPONSE)
		return SAURON_MSG_ECHO_RESPONSE;
	if (msg_type == GTPU_END_MARKER)
		return SAURON_MSG_END_MARKER;
	if (msg_type == GTPU_ERROR_INDICATION)
		return SAURON_MSG_ERROR_INDICATION;
	return SAURON_MSG_OTHER;
}

/* PDU Session Container: the first content octet carries the PDU type in its
 * high nibble (0 DL, 1 UL; TS 38.415 defines no other), the second the QFI in
 * its low six bits, for DL and UL alike. The chain walk has already checked
 * that the header's 4-octet unit is in the frame. */
static __always_inline void read_pdu_session_container(__u8 *ext, struct gtpu_view *g,
						       __u32 *anomaly)
{
	__u8 pdu_type = ext[1] >> 4;

	if (pdu_type > 1) {
		note_anomaly(anomaly, SAURON_AN_GTPU_PDU_CONTAINER_BAD);
		return;
	}
	g->pdu_type = pdu_type;
	g->qfi = ext[2] & 0x3f;
}

/* Returns 0 when a GTPv1-U header parsed (the frame counts as GTP-U even if
 * what follows is wrong), -1 when the payload is not GTPv1-U. */
static __always_inline int parse_gtpu(struct hdr_cursor *c, void *data_end, __u32 udp_len,
				      struct gtpu_view *g, __u32 *anomaly)
{
	struct gtpu_hdr *h = c->pos;

	g->qfi = SAURON_NO_QFI;
	g->pdu_type = GTPU_PDU_TYPE_NONE;
	if ((void *)(h + 1) > data_end) {
		note_anomaly(anomaly, SAURON_AN_GTPU_TRUNCATED);
		return -1;
	}
	/* GTPv1 with PT=1; PT=0 is GTP', anything else is not ours */
	if ((h->flags & (GTPU_VERSION_MASK | GTPU_FLAG_PT)) != (GTPU_VERSION_1 | GTPU_FLAG_PT)) {
		note_anomaly(anomaly, SAURON_AN_GTPU_NOT_V1);
		return -1;
	}
	g->flags = h->flags;
	g->msg_type = h->msg_type;
	g->teid = bpf_ntohl(h->teid);
	c->pos = h + 1;

	if (udp_len >= 16 && bpf_ntohs(h->length) != udp_len - 16)
		note_anomaly(anomaly, SAURON_AN_GTPU_LENGTH_MISMATCH);

	if (!(h->flags & (GTPU_FLAG_E | GTPU_FLAG_S | GTPU_FLAG_PN))) {
		g->payload_ok = 1;
		return 0;
	}
	struct gtpu_opt *opt = c->pos;
	if ((void *)(opt + 1) > data_end) {
		note_anomaly(anomaly, SAURON_AN_GTPU_OPT_TRUNCATED);
		return 0;
	}
	g->seq = bpf_ntohs(opt->seq);
	c->pos = opt + 1;
	__u8 next = (h->flags & GTPU_FLAG_E) ? opt->next_ext : 0;

	for (int i = 0; i < SAURON_MAX_GTPU_EXT_HEADERS; i++) {
		if (next == 0)
			break;
		__u8 *ext = c->pos;
		if ((void *)(ext + 1) > data_end) {
			note_anomaly(anomaly, SAURON_AN_GTPU_EXT_TRUNCATED);
			return 0;
		}
		/* the length counts 4-octet units, length octet and next-type included */
		__u32 len = (__u32)ext[0] * 4;
		if (len == 0) {
			note_anomaly(anomaly, SAURON_AN_GTPU_EXT_ZERO_LENGTH);
			return 0;
		}
		if (c->pos + len > data_end) {
			note_anomaly(anomaly, SAURON_AN_GTPU_EXT_TRUNCATED);
			return 0;
		}
		if (next == GTPU_EXT_PDU_SESSION_CONTAINER) {
			if ((void *)(ext + 3) > data_end) {
				note_anomaly(anomaly, SAURON_AN_GTPU_EXT_TRUNCATED);
				return 0;
			}
			read_pdu_session_container(ext, g, anomaly);
		}
		__u8 *next_type = c->pos + len - 1;
		if ((void *)(next_type + 1) > data_end) {
			note_anomaly(anomaly, SAURON_AN_GTPU_EXT_TRUNCATED);
			return 0;
		}
		next = *next_type;
		c->pos += len;
		g->ext_headers++;
	}
	if (next != 0) {
		note_anomaly(anomaly, SAURON_AN_GTPU_EXT_CHAIN_TOO_LONG);
		return 0;
	}
	g->payload_ok = 1;
	return 0;
}

#endif /* SAURON_LIB_GTPU_H */
