/* Sauron: the facts shared by the energy probe (sauron/bpf/c/energy/energy.c)
 * and the Python agent.
 *
 * This header is the single owner of the probe's map sizes, enum values and
 * the layout of every map key and value that user space reads; the data-path
 * programs do not include it. sauron/abi/energy_layout.py parses the #defines
 * and enums below, and a test checks its ctypes views against the types clang
 * builds from this file.
 */
#ifndef SAURON_ENERGY_H
#define SAURON_ENERGY_H

/* Where the node's CPU time goes, kept by sauron/bpf/c/energy/energy.c (its own
 * object, attached to sched_switch, softirq_entry/exit and a per-CPU clock
 * tick). Watched network-function processes get an index the agent assigns;
 * their threads are found by process id (tgid) or by cgroup. */
#define SAURON_MAX_WATCHED 64
#define SAURON_WATCHED_TASKS 8192
#define SAURON_WATCHED_CGROUPS 1024
#define SAURON_WATCHED_THREADS 16384
/* softirq vectors (include/linux/interrupt.h) */
#define SAURON_SOFTIRQ_NET_TX 2
#define SAURON_SOFTIRQ_NET_RX 3

/* cpu_time[0], per CPU. A "stretch" is the time one task holds the CPU
 * between two events (a switch or the clock tick). Packet softirqs that run
 * inside a watched task's stretch are its time, as the kernel charges them
 * to it (top, pidstat and schedstat agree), and are kept apart so that the
 * shared softirq time is the rest: the times never overlap. */
struct sauron_cpu_time {
	__u64 idle_ns;	 /* the idle task, packet softirqs excluded */
	__u64 net_rx_ns; /* NET_RX softirq */
	__u64 net_tx_ns; /* NET_TX softirq */
	__u64 net_rx_runs;
	__u64 net_tx_runs;
	__u64 switches; /* context switches seen */
	/* Packet softirq time outside watched tasks' contexts that followed the
	 * receipt (netif_receive_skb) of a packet on one of Sauron's receiving
	 * links, or on any other link, until the next receipt, the end of the
	 * NAPI poll or of the softirq: the stack's work on those packets; and a
	 * device's NAPI poll's driver work before its first receipt, the
	 * device's. The rest (the backlog's, NET_TX) is owned by neither. */
	__u64 sauron_rx_ns;
	__u64 other_rx_ns;
	/* the packets received in those softirqs, on Sauron's links and others */
	__u64 sauron_rx_packets;
	__u64 other_rx_packets;
	/* the program's own state */
	__u64 stretch_start_ns;
	__u64 stretch_softirq_ns; /* packet softirq time when the stretch started */
	__u64 softirq_start_ns;	  /* 0 outside a packet softirq */
	__u64 softirq_vec;
	__u64 segment_start_ns; /* 0: the running softirq is not split */
	__u64 poll_head_ns;	/* the running NAPI poll's time before its first packet */
	__u64 last_dev;		/* the net_device last looked up */
	__u32 segment_owner;	/* SAURON_RX_* */
	__u32 last_dev_owner;	/* SAURON_RX_*, SAURON_RX_NONE: look it up */
	/* whether the task whose context a softirq runs in is watched, cached
	 * for its tgid until the next context switch */
	__u32 context_tgid;
	__u32 context_known; /* 0: look it up; 1: not watched; 2: watched */
};

/* Whose packet the stack works on in a packet softirq. */
enum sauron_rx_owner {
	SAURON_RX_NONE = 0,
	SAURON_RX_SAURON = 1,
	SAURON_RX_OTHER = 2,
};

/* receive_offsets[0]: where the fields the receive hook reads lie in the
 * running kernel (from its BTF, not from compile-time headers); known = 0
 * leaves every packet's owner unknown. */
struct sauron_receive_offsets {
	__u32 skb_dev;	   /* sk_buff.dev */
	__u32 napi_dev;	   /* napi_struct.dev */
	__u32 dev_ifindex; /* net_device.ifindex */
	__u32 dev_net;	   /* net_device.nd_net.net */
	__u32 net_inum;	   /* net.ns.inum: the namespace's inode number */
	__u32 known;
};

/* receiving_links: the links whose received packets Sauron's programs
 * handle, by namespace inode and interface index. */
struct sauron_link_key {
	__u32 netns;
	__u32 ifindex;
};
#define SAURON_RECEIVING_LINKS 256

/* watched_time[watch index], per CPU: on-CPU time of one watched entry as
 * the probe timed it switch to switch (the packet softirqs run in its
 * context included, and those on their own), and its run time as the
 * scheduler accounts it (sched_stat_runtime: without the time a hypervisor
 * stole, and without interrupt time on kernels that account it apart). */
struct sauron_watched_time {
	__u64 on_cpu_ns;
	__u64 softirq_ns;
	__u64 stretches;
	__u64 run_ns;
};

#endif /* SAURON_ENERGY_H */
