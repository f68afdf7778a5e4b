/* What an attach point is, asked of its row in SAURON_POINT_TABLE
 * (sauron_shared.h) rather than of the order of the ids. Every program
 * passes its point as a constant, so the compiler folds each question to
 * its answer: asking costs no instruction. */
#ifndef SAURON_LIB_POINT_H
#define SAURON_LIB_POINT_H

#include "sauron_shared.h"

struct point_row {
	__u32 side;	 /* enum sauron_side, 0 for no such point */
	__u32 hook;	 /* enum sauron_hook, 0 for no such point */
	__u32 direction; /* the direction it counts in by default */
	__u32 qfi_row;	 /* SAURON_NO_QFI_ROW when it sees no QFIs */
};

/* A point's row by its id; two rows with one id do not compile. */
static __always_inline struct point_row point_row(__u32 point)
{
	struct point_row row = { 0, 0, SAURON_DIR_UPLINK, SAURON_NO_QFI_ROW };

	switch (point) {
#define POINT_CASE(name, id, side_, hook_, direction_, qfi_row_)                                   \
	case id:                                                                                   \
		row = (struct point_row){                                                          \
			.side = side_, .hook = hook_, .direction = direction_, .qfi_row = qfi_row_ \
		};                                                                                 \
		break;
		SAURON_POINT_TABLE(POINT_CASE)
#undef POINT_CASE
	}
	return row;
}

/* Ids run from 0 without a gap (the switch above refuses a repeated one);
 * qfi rows stay below SAURON_QFI_POINTS (sauron/abi/points.py checks that
 * they are distinct too). */
#define POINT_ID_CHECK(name, id, side, hook, direction, qfi_row)                         \
	_Static_assert((id) < SAURON_POINTS, "SAURON_POINT_" #name ": ids leave a gap"); \
	_Static_assert((qfi_row) < SAURON_QFI_POINTS || (qfi_row) == SAURON_NO_QFI_ROW,  \
		       "SAURON_POINT_" #name ": qfi row out of range");
SAURON_POINT_TABLE(POINT_ID_CHECK)
#undef POINT_ID_CHECK

/* Frames are GTP-U there (N3, N9). */
static __always_inline int point_sees_gtpu(__u32 point)
{
	return point_row(point).side == SAURON_GTPU_SIDE;
}

/* Frames enter the UPF there: where their direction's transit is stamped. */
static __always_inline int point_is_ingress(__u32 point)
{
	return point_row(point).hook == SAURON_INGRESS;
}

/* Frames leave the UPF there: where their direction's transit is matched. */
static __always_inline int point_is_egress(__u32 point)
{
	return point_row(point).hook == SAURON_EGRESS;
}

/* The direction a point counts frames in unless configured otherwise. */
static __always_inline __u32 point_direction(__u32 point)
{
	return point_row(point).direction;
}

/* The point's row in qfi_stats, SAURON_NO_QFI_ROW when it sees no QFIs. */
static __always_inline __u32 point_qfi_row(__u32 point)
{
	return point_row(point).qfi_row;
}

#endif /* SAURON_LIB_POINT_H */
