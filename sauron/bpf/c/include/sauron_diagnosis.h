/* Sauron: the facts shared by the diagnosis probe
 * (sauron/bpf/c/diagnosis/diagnosis.c) and the Python agent.
 *
 * This header is the single owner of the probe's map sizes, enum values and
 * the layout of every map key and value that user space reads. Waits are
 * histograms of the data path's own latency geometry (sauron_shared.h), so a
 * wait and the transit time it explains have the same bucket error.
 * sauron/abi/diagnosis_layout.py parses the #defines and enums below, and a
 * test checks its ctypes views against the types clang builds from this file.
 */
#ifndef SAURON_DIAGNOSIS_H
#define SAURON_DIAGNOSIS_H

#include "sauron_shared.h"

/* Watched network-function processes (by tgid), each with an index the agent
 * assigns; their threads are found by tgid at every event. */
#define SAURON_DIAG_WATCHED 64
#define SAURON_DIAG_WATCHED_TASKS 8192
/* threads waiting to run, or inside a futex call, at one time */
#define SAURON_DIAG_THREADS 16384
/* (watched process, task that held the CPU, CPU) rows */
#define SAURON_DIAG_CULPRITS 4096
/* kernel drop reasons counted (enum skb_drop_reason values below it) */
#define SAURON_DIAG_DROP_REASONS 256
#define SAURON_DIAG_COMM 16

/* What a watched thread waited for. */
enum sauron_diag_wait {
	/* woken (or preempted) until it runs again: the run queue */
	SAURON_WAIT_RUNQUEUE = 0,
	/* inside a futex call: a lock or condition of its own process */
	SAURON_WAIT_FUTEX = 1,
	/* the run-queue waits of one activation, summed: from its wakeup until
	 * it sleeps again, each preemption in between adding its wait (what a
	 * packet handled in that activation may have waited in all) */
	SAURON_WAIT_RUNQUEUE_ACTIVATION = 2,
	SAURON_WAITS = 3,
};

/* diag_config[0]: where the fields the probe reads lie in the running
 * kernel's task_struct (from its BTF), and the futex system call numbers of
 * this architecture; known = 0 leaves the sched hooks idle. */
struct sauron_diag_config {
	__u32 task_pid;	 /* task_struct.pid (the thread id) */
	__u32 task_tgid; /* task_struct.tgid (the process id) */
	__u32 futex_nr;
	__u32 futex_waitv_nr;
	__u32 known;
	__u32 pad;
};

/* diag_task[watch index], per CPU */
struct sauron_diag_task {
	/* switched out while still runnable (preempted) */
	__u64 preemptions;
	/* switched out to wait (sleeping, blocked) */
	__u64 sleeps;
	/* wakeups of its threads */
	__u64 wakeups;
};

/* diag_culprits: run-queue wait of a watched process, charged to the task
 * that held the CPU when the wait ended (the idle task: pid 0) */
struct sauron_culprit_key {
	__u32 watch;
	__u32 tgid;
	__u32 cpu;
	__u32 pad;
};

struct sauron_culprit {
	__u64 wait_ns;
	__u64 waits;
	char comm[SAURON_DIAG_COMM];
};

#endif /* SAURON_DIAGNOSIS_H */
