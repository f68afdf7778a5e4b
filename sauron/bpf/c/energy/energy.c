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
 * netif_receive_skb and napi_poll split the packet softirq time by whose
 * packet the stack works on: after a packet received on one of Sauron's
 * links (the agent lists them by namespace and interface index), Sauron's;
 * after any other, the node's; so other traffic on the node is never
 * charged to a slice. The receiving device is read through offsets the
 * agent takes from the running kernel's BTF, one read per packet when the
 * device is the last one's. The watched-context test is cached per CPU
 * until the next switch.
 *
 * Raw tracepoints: the programs read of the arguments the softirq vector,
 * of sched_stat_runtime the task pointer (compared, never read through) and
 * the run time, and of netif_receive_skb the sk_buff, through offsets given
 * at load time: no compile-time kernel structure layout is assumed. */
#include "sauron_energy.h"

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
BPF_ARRAY(receive_offsets, struct sauron_receive_offsets, 1);
BPF_HASH(receiving_links, struct sauron_link_key, __u32, SAURON_RECEIVING_LINKS);

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
	c->context_known = 0;
	c->last_dev_owner = SAURON_RX_NONE; /* a device's address may be reused */
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

/* Whether the task whose context runs now is watched (its softirqs are its
 * time), cached per CPU for its tgid until the next switch. */
static __always_inline int in_watched_context(struct sauron_cpu_time *c)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!c->context_known || c->context_tgid != tgid) {
		c->context_tgid = tgid;
		c->context_known = tgid && watch_index(tgid) ? 2 : 1;
	}
	return c->context_known == 2;
}

static __always_inline void give_time(struct sauron_cpu_time *c, __u32 owner, __u64 span)
{
	if (owner == SAURON_RX_SAURON)
		c->sauron_rx_ns += span;
	else if (owner == SAURON_RX_OTHER)
		c->other_rx_ns += span;
}

/* Ends the running piece of a split softirq, to the owner of its packet;
 * a piece before a poll's first packet waits for the poll's device. */
static __always_inline void close_segment(struct sauron_cpu_time *c, __u64 now)
{
	if (now > c->segment_start_ns) {
		__u64 span = now - c->segment_start_ns;
		if (c->segment_owner == SAURON_RX_NONE)
			c->poll_head_ns += span;
		else
			give_time(c, c->segment_owner, span);
	}
	c->segment_start_ns = now;
}

int sauron_softirq_entry(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 vec = (__u32)ctx->args[0];
	if (!is_packet_softirq(vec))
		return 0;
	struct sauron_cpu_time *c = this_cpu();
	if (!c)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	c->softirq_start_ns = now;
	c->softirq_vec = vec;
	c->segment_owner = SAURON_RX_NONE;
	c->poll_head_ns = 0;
	c->segment_start_ns = in_watched_context(c) ? 0 : now;
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
	if (c->segment_start_ns) {
		close_segment(c, now);
		c->segment_start_ns = 0;
	}
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

/* The owner of what a device received (`holder` holds the net_device
 * pointer at offset `at`: an sk_buff or a napi_struct): the link's, read
 * through the offsets the agent found in the running kernel's BTF; the
 * last device's answer is kept, a NAPI poll's packets being one device's. */
static __always_inline __u32 device_owner(struct sauron_cpu_time *c,
					  const struct sauron_receive_offsets *off, __u64 holder,
					  __u32 at)
{
	__u64 dev = 0;
	if (bpf_probe_read_kernel(&dev, sizeof(dev), (void *)(holder + at)) || !dev)
		return SAURON_RX_NONE;
	if (dev == c->last_dev && c->last_dev_owner != SAURON_RX_NONE)
		return c->last_dev_owner;
	struct sauron_link_key key = {};
	__u64 net = 0;
	if (bpf_probe_read_kernel(&key.ifindex, sizeof(key.ifindex),
				  (void *)(dev + off->dev_ifindex)) ||
	    bpf_probe_read_kernel(&net, sizeof(net), (void *)(dev + off->dev_net)) || !net ||
	    bpf_probe_read_kernel(&key.netns, sizeof(key.netns), (void *)(net + off->net_inum)))
		return SAURON_RX_NONE;
	c->last_dev = dev;
	c->last_dev_owner = receiving_links.lookup(&key) ? SAURON_RX_SAURON : SAURON_RX_OTHER;
	return c->last_dev_owner;
}

/* Every packet the stack receives (args: the sk_buff): in a split packet
 * softirq, the time up to here was the previous packet's, what follows is
 * this one's. */
int sauron_receive(struct bpf_raw_tracepoint_args *ctx)
{
	struct sauron_cpu_time *c = this_cpu();
	if (!c || !c->segment_start_ns)
		return 0;
	close_segment(c, bpf_ktime_get_ns());
	__u32 zero = 0;
	struct sauron_receive_offsets *off = receive_offsets.lookup(&zero);
	c->segment_owner = SAURON_RX_NONE;
	if (off && off->known)
		c->segment_owner = device_owner(c, off, ctx->args[0], off->skb_dev);
	if (c->segment_owner == SAURON_RX_SAURON)
		c->sauron_rx_packets += 1;
	else
		c->other_rx_packets += 1;
	return 0;
}

/* The end of one device's NAPI poll (args: the napi_struct): its driver
 * work before its first receipt is the device's (the backlog's, with no
 * device, is no packet's); the next poll's starts. */
int sauron_napi_poll(struct bpf_raw_tracepoint_args *ctx)
{
	struct sauron_cpu_time *c = this_cpu();
	if (!c || !c->segment_start_ns)
		return 0;
	close_segment(c, bpf_ktime_get_ns());
	__u32 zero = 0;
	struct sauron_receive_offsets *off = receive_offsets.lookup(&zero);
	if (off && off->known)
		give_time(c, device_owner(c, off, ctx->args[0], off->napi_dev), c->poll_head_ns);
	c->poll_head_ns = 0;
	c->segment_owner = SAURON_RX_NONE;
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
