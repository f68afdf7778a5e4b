/* Why a slice is late: what the threads of the network functions that
 * serve it wait for, attached only while a slice is degraded (the agent
 * attaches the programs when a latency or loss check fails and closes the
 * links after a tail; detached, they cost nothing).
 *
 * sched_wakeup and sched_switch time each watched thread's run-queue wait,
 * from its wakeup (or its preemption) until it runs, into a histogram of
 * the data path's latency geometry, and charge the wait to the task that
 * held the CPU when it ended, with its name; the waits of one activation
 * (wakeup to sleep, preemptions between) are summed into a histogram of
 * their own; sched_switch counts the preemptions and sleeps. sys_enter and sys_exit time the futex calls of
 * watched threads (the waits on their own locks and conditions). kfree_skb
 * counts the kernel's packet drops by reason, on the whole node.
 *
 * Raw tracepoints: the task's pid and tgid are read at offsets taken from
 * the running kernel's BTF (diag_config), never from compile-time headers;
 * the task leaving the CPU at sched_switch is the current task, whose name
 * and ids the helpers give. */
#include "sauron_diagnosis.h"
#include "lib/histogram.h"

BPF_ARRAY(diag_config, struct sauron_diag_config, 1);
/* tgid -> watch index */
BPF_HASH(diag_watched, __u32, __u32, SAURON_DIAG_WATCHED_TASKS);
/* thread id -> when it became runnable without running */
BPF_TABLE("lru_hash", __u32, __u64, diag_runnable, SAURON_DIAG_THREADS);
/* thread id -> its run-queue waits so far in its current activation */
BPF_TABLE("lru_hash", __u32, __u64, diag_activation, SAURON_DIAG_THREADS);
/* thread id -> when it entered a futex call */
BPF_TABLE("lru_hash", __u32, __u64, diag_in_futex, SAURON_DIAG_THREADS);
BPF_PERCPU_ARRAY(diag_waits, struct sauron_latency_hist, SAURON_DIAG_WATCHED *SAURON_WAITS);
BPF_PERCPU_ARRAY(diag_task, struct sauron_diag_task, SAURON_DIAG_WATCHED);
BPF_TABLE("lru_hash", struct sauron_culprit_key, struct sauron_culprit, diag_culprits,
	  SAURON_DIAG_CULPRITS);
BPF_PERCPU_ARRAY(diag_drops, __u64, SAURON_DIAG_DROP_REASONS);

static __always_inline struct sauron_diag_config *config(void)
{
	__u32 zero = 0;
	struct sauron_diag_config *c = diag_config.lookup(&zero);
	return c && c->known ? c : 0;
}

static __always_inline __u32 task_u32(void *task, __u32 offset)
{
	__u32 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), (char *)task + offset);
	return v;
}

static __always_inline void record_wait(__u32 watch, __u32 kind, __u64 ns)
{
	__u32 slot = watch * SAURON_WAITS + kind;
	struct sauron_latency_hist *h = diag_waits.lookup(&slot);
	if (h)
		hist_record(h, ns);
}

int sauron_diag_wakeup(struct bpf_raw_tracepoint_args *ctx)
{
	struct sauron_diag_config *c = config();
	if (!c)
		return 0;
	void *task = (void *)ctx->args[0];
	__u32 tgid = task_u32(task, c->task_tgid);
	__u32 *watch = diag_watched.lookup(&tgid);
	if (!watch)
		return 0;
	__u32 tid = task_u32(task, c->task_pid);
	__u64 now = bpf_ktime_get_ns();
	diag_runnable.update(&tid, &now);
	struct sauron_diag_task *t = diag_task.lookup(watch);
	if (t)
		t->wakeups += 1;
	return 0;
}

int sauron_diag_switch(struct bpf_raw_tracepoint_args *ctx)
{
	struct sauron_diag_config *c = config();
	if (!c)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 prev_ids = bpf_get_current_pid_tgid(); /* prev is the current task */
	__u32 prev_tgid = prev_ids >> 32;
	__u32 *prev_watch = diag_watched.lookup(&prev_tgid);
	if (prev_watch) {
		struct sauron_diag_task *t = diag_task.lookup(prev_watch);
		/* still runnable (prev_state TASK_RUNNING): preempted, by the
		 * kernel or on its way back to user space; it waits in the run
		 * queue from now */
		__u32 prev_tid = (__u32)prev_ids;
		if (ctx->args[3] == 0) {
			diag_runnable.update(&prev_tid, &now);
			if (t)
				t->preemptions += 1;
		} else {
			if (t)
				t->sleeps += 1;
			/* it sleeps: its activation's waits are summed up */
			__u64 *waited = diag_activation.lookup(&prev_tid);
			if (waited) {
				record_wait(*prev_watch, SAURON_WAIT_RUNQUEUE_ACTIVATION, *waited);
				diag_activation.delete(&prev_tid);
			}
		}
	}
	void *next = (void *)ctx->args[2];
	__u32 next_tgid = task_u32(next, c->task_tgid);
	__u32 *watch = diag_watched.lookup(&next_tgid);
	if (!watch)
		return 0;
	__u32 tid = task_u32(next, c->task_pid);
	__u64 *since = diag_runnable.lookup(&tid);
	if (!since)
		return 0;
	__u64 wait = now > *since ? now - *since : 0;
	diag_runnable.delete(&tid);
	record_wait(*watch, SAURON_WAIT_RUNQUEUE, wait);
	/* one thread runs on one CPU at a time: no other update races this */
	__u64 *so_far = diag_activation.lookup(&tid);
	if (so_far)
		*so_far += wait;
	else
		diag_activation.update(&tid, &wait);

	struct sauron_culprit_key key = {};
	key.watch = *watch;
	key.tgid = prev_tgid;
	key.cpu = bpf_get_smp_processor_id();
	struct sauron_culprit *held = diag_culprits.lookup(&key);
	if (held) {
		held->wait_ns += wait;
		held->waits += 1;
		return 0;
	}
	struct sauron_culprit fresh = {};
	fresh.wait_ns = wait;
	fresh.waits = 1;
	bpf_get_current_comm(&fresh.comm, sizeof(fresh.comm));
	diag_culprits.update(&key, &fresh);
	return 0;
}

int sauron_diag_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct sauron_diag_config *c = config();
	if (!c)
		return 0;
	__u64 id = ctx->args[1];
	if (id != c->futex_nr && id != c->futex_waitv_nr)
		return 0;
	__u64 ids = bpf_get_current_pid_tgid();
	__u32 tgid = ids >> 32;
	if (!diag_watched.lookup(&tgid))
		return 0;
	__u32 tid = (__u32)ids;
	__u64 now = bpf_ktime_get_ns();
	diag_in_futex.update(&tid, &now);
	return 0;
}

int sauron_diag_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 ids = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)ids;
	__u64 *since = diag_in_futex.lookup(&tid);
	if (!since)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 wait = now > *since ? now - *since : 0;
	diag_in_futex.delete(&tid);
	__u32 tgid = ids >> 32;
	__u32 *watch = diag_watched.lookup(&tgid);
	if (watch)
		record_wait(*watch, SAURON_WAIT_FUTEX, wait);
	return 0;
}

int sauron_diag_drop(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 reason = (__u32)ctx->args[2];
	if (reason >= SAURON_DIAG_DROP_REASONS)
		reason = 0; /* beyond the table: counted as reason 0 */
	__u64 *n = diag_drops.lookup(&reason);
	if (n)
		*n += 1;
	return 0;
}
