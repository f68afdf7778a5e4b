/* Where the node's CPU time goes: the idle task, packet softirqs (NET_RX,
 * NET_TX) and the watched network-function processes, per CPU, in
 * nanoseconds of the kernel's monotonic clock.
 *
 * Three hooks keep one running "stretch" per CPU: sched_switch closes the
 * stretch of the task leaving the CPU, a clock tick (a per-CPU perf software
 * event) closes the stretch of whatever runs so that a task that never
 * sleeps is counted too, and softirq_entry/exit time the packet softirqs:
 * a watched task's stretch keeps the ones it ran (the kernel charges them to
 * it) and counts them apart; the idle task's leaves them out. Unwatched
 * tasks cost one hash lookup per switch (two when cgroups are watched).
 *
 * The run time of a watched task is the scheduler's own account, taken from
 * sched_stat_runtime: the switch-to-switch stretches run on the monotonic
 * clock, which keeps going while a hypervisor runs another guest on this
 * CPU (steal), and the scheduler's clock does not.
 *
 * Raw tracepoints: the programs read of the arguments only the softirq
 * vector, and of sched_stat_runtime the task pointer (compared, never read
 * through) and the run time, so no kernel structure layout is assumed. */
#include "sauron_shared.h"

BPF_PERCPU_ARRAY(cpu_time, struct sauron_cpu_time, 1);
BPF_PERCPU_ARRAY(watched_time, struct sauron_watched_time, SAURON_MAX_WATCHED);
/* tgid -> watch index */
BPF_HASH(watched_tasks, __u32, __u32, SAURON_WATCHED_TASKS);
/* cgroup v2 id -> watch index */
BPF_HASH(watched_cgroups, __u64, __u32, SAURON_WATCHED_CGROUPS);
/* task_struct address -> watch index, learnt while the task is current, so
 * run time the scheduler accounts from another CPU finds its owner too */
BPF_TABLE("lru_hash", __u64, __u32, watched_threads, SAURON_WATCHED_THREADS);
/* energy_config[0]: 1 when any cgroup is watched */
BPF_ARRAY(energy_config, __u32, 1);

static __always_inline struct sauron_cpu_time *this_cpu(void)
{
	__u32 zero = 0;
	return cpu_time.lookup(&zero);
}

static __always_inline __u32 *watch_index(__u32 tgid)
{
	__u32 *index = watched_tasks.lookup(&tgid);
	if (index)
		return index;
	__u32 zero = 0;
	__u32 *with_cgroups = energy_config.lookup(&zero);
	if (!with_cgroups || !*with_cgroups)
		return 0;
	__u64 cgroup = bpf_get_current_cgroup_id();
	return watched_cgroups.lookup(&cgroup);
}

/* The packet softirq time of this CPU so far, the one running included. */
static __always_inline __u64 softirq_so_far(struct sauron_cpu_time *c, __u64 now)
{
	__u64 total = c->net_rx_ns + c->net_tx_ns;
	if (c->softirq_start_ns && now > c->softirq_start_ns)
		total += now - c->softirq_start_ns;
	return total;
}

/* Gives the stretch that ends now to the task on the CPU (the current
 * task: at sched_switch, the one leaving) and starts the next one. */
static __always_inline void close_stretch(struct sauron_cpu_time *c, __u64 now)
{
	__u64 softirq = softirq_so_far(c, now);

	if (c->stretch_start_ns && now > c->stretch_start_ns) {
		__u64 span = now - c->stretch_start_ns;
		__u64 in_softirq = softirq - c->stretch_softirq_ns;
		if (in_softirq > span)
			in_softirq = span;
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		if ((__u32)pid_tgid == 0) {
			c->idle_ns += span - in_softirq; /* each CPU's idle task has pid 0 */
		} else {
			__u32 *index = watch_index(pid_tgid >> 32);
			if (index) {
				struct sauron_watched_time *w = watched_time.lookup(index);
				if (w) {
					w->on_cpu_ns += span;
					w->softirq_ns += in_softirq;
					w->stretches += 1;
				}
			}
		}
	}
	c->stretch_start_ns = now;
	c->stretch_softirq_ns = softirq;
}

int sauron_sched_switch(struct bpf_raw_tracepoint_args *ctx)
{
	struct sauron_cpu_time *c = this_cpu();
	if (!c)
		return 0;
	c->switches += 1;
	close_stretch(c, bpf_ktime_get_ns());
	return 0;
}

int sauron_clock_tick(struct bpf_perf_event_data *ctx)
{
	struct sauron_cpu_time *c = this_cpu();
	if (c)
		close_stretch(c, bpf_ktime_get_ns());
	return 0;
}

static __always_inline int is_packet_softirq(__u64 vec)
{
	return vec == SAURON_SOFTIRQ_NET_RX || vec == SAURON_SOFTIRQ_NET_TX;
}

int sauron_softirq_entry(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 vec = (__u32)ctx->args[0];
	if (!is_packet_softirq(vec))
		return 0;
	struct sauron_cpu_time *c = this_cpu();
	if (!c)
		return 0;
	c->softirq_start_ns = bpf_ktime_get_ns();
	c->softirq_vec = vec;
	return 0;
}

int sauron_softirq_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 vec = (__u32)ctx->args[0];
	if (!is_packet_softirq(vec))
		return 0;
	struct sauron_cpu_time *c = this_cpu();
	/* a softirq that began before the programs were attached is not timed */
	if (!c || !c->softirq_start_ns || c->softirq_vec != vec)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 spent = now > c->softirq_start_ns ? now - c->softirq_start_ns : 0;
	if (vec == SAURON_SOFTIRQ_NET_RX) {
		c->net_rx_ns += spent;
		c->net_rx_runs += 1;
	} else {
		c->net_tx_ns += spent;
		c->net_tx_runs += 1;
	}
	c->softirq_start_ns = 0;
	return 0;
}

/* args: the task, the run time just accounted to it (ns). Usually the task
 * is the one running here; when the scheduler updates another CPU's
 * current task, its owner is found by the address learnt earlier. */
int sauron_sched_runtime(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 task = ctx->args[0];
	__u64 runtime = ctx->args[1];
	__u32 *index;

	if (task == bpf_get_current_task()) {
		/* an exited task's address, reused, could keep a stale entry: the
		 * agent clears the map whenever the watched set changes */
		index = watch_index(bpf_get_current_pid_tgid() >> 32);
		if (!index)
			return 0;
		watched_threads.update(&task, index);
	} else {
		index = watched_threads.lookup(&task);
		if (!index)
			return 0;
	}
	struct sauron_watched_time *w = watched_time.lookup(index);
	if (w)
		w->run_ns += runtime;
	return 0;
}
