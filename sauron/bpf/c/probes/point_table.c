/* Test probe: every attach point's row of SAURON_POINT_TABLE as the C reads
 * it (the ids of enum sauron_point, the answers of lib/point.h), so a test
 * can hold sauron/abi/points.py's reading of the same table against it. */
#include "lib/point.h"

struct point_probe_row {
	char label[16]; /* the row's name, the enumerator SAURON_POINT_<name> */
	__u32 known;	/* 1: this id is a row's */
	__u32 side;
	__u32 hook;
	__u32 direction;
	__u32 qfi_row;
	__u32 sees_gtpu;
	__u32 is_ingress;
	__u32 is_egress;
};

/* by point id */
BPF_ARRAY(point_rows, struct point_probe_row, SAURON_POINTS);
/* [0]: SAURON_POINTS, [1]: SAURON_QFI_POINTS */
BPF_ARRAY(point_counts, __u32, 2);

static __always_inline void record_point(__u32 point, struct point_probe_row *r)
{
	struct point_row row = point_row(point);

	r->known = 1;
	r->side = row.side;
	r->hook = row.hook;
	r->direction = point_direction(point);
	r->qfi_row = point_qfi_row(point);
	r->sees_gtpu = point_sees_gtpu(point);
	r->is_ingress = point_is_ingress(point);
	r->is_egress = point_is_egress(point);
	point_rows.update(&point, r);
}

int point_table_probe(struct xdp_md *ctx)
{
	__u32 key = 0, value = SAURON_POINTS;

	point_counts.update(&key, &value);
	key = 1;
	value = SAURON_QFI_POINTS;
	point_counts.update(&key, &value);
#define PROBE_ROW(name, id, side, hook, direction, qfi_row)      \
	{                                                        \
		struct point_probe_row r = {};                   \
		__builtin_memcpy(r.label, #name, sizeof(#name)); \
		record_point(SAURON_POINT_##name, &r);           \
	}
	SAURON_POINT_TABLE(PROBE_ROW)
#undef PROBE_ROW
	return XDP_PASS;
}
