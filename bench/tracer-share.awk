# bizprobe bench: from `perf script -F comm,tid,ip,sym` of a traced server (perf record -g), the
# samples whose kernel stack passes through a tracer's path, out of all samples:
#   uprobe traps and their return (int3, single-step, the uretprobe syscall, the handlers),
#   syscall tracepoints (the slow syscall entry and exit every traced syscall takes) and the BPF
#   programs they run.
# Prints "HITS SAMPLES PERCENT". On a CPU-bound server this share is a lower bound of what the
# tracer takes from its throughput (trap delivery and cache effects outside the sampled stacks
# only add to it), and it is free of the 10-40% round-to-round noise of the throughput itself.
function flush() {
	if (insample) {
		n++
		if (hit)
			h++
	}
	insample = 0
	hit = 0
}
/^[^\t]/ && NF { flush(); insample = 1; next }
/^[ \t]*$/ { flush(); next }
insample && $2 ~ /^(asm_exc_int3|asm_exc_debug|__x64_sys_uretprobe|uprobe_notify_resume|uprobe_handle_trampoline|syscall_trace_enter|syscall_exit_work|perf_syscall_enter|perf_syscall_exit|trace_call_bpf|bpf_prog_[0-9a-f_]+.*)$/ { hit = 1 }
END {
	flush()
	printf "%d %d %.2f\n", h, n, n ? 100 * h / n : 0
}
