//! The calling thread's CPU time, from `/proc/thread-self/schedstat` and `/proc/thread-self/stat`
//! (and, for the timer benchmark's short phases, `clock_gettime`).
//!
//! The first field of `schedstat` is the time the thread has spent running on a CPU, in
//! nanoseconds, user and kernel together (the scheduler's `sum_exec_runtime`): that is the
//! measurement. Kernel time matters here: most of an echo server's work is its syscalls. The
//! user/kernel split comes from `stat`'s `utime` and `stime`, in clock ticks (1/100 s): too
//! coarse for a per-message cost, enough to tell how much of a second-long run was user space.

use std::io;

/// A thread's CPU time so far, or consumed over an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// On-CPU time, user and kernel, in nanoseconds (exact).
    pub ns: u64,
    /// User-mode time in clock ticks (sampled by the kernel's tick).
    pub user_ticks: u64,
    /// Kernel-mode time in clock ticks (sampled by the kernel's tick).
    pub sys_ticks: u64,
    /// Heap allocations (and reallocations) the thread made (the counting allocator's
    /// per-thread count: exact).
    pub allocations: u64,
    /// The thread's heap (bytes it allocated minus bytes it freed) at the moment read; in
    /// an interval (`since`), at the interval's start: for a server, what it held with its
    /// connections made and idle, just before a measured load.
    pub heap_at_start: i64,
}

impl CpuTimes {
    /// The calling thread's CPU times so far.
    pub fn now() -> io::Result<CpuTimes> {
        let (user_ticks, sys_ticks) = thread_user_sys_ticks()?;
        Ok(CpuTimes {
            ns: thread_cpu_ns()?,
            user_ticks,
            sys_ticks,
            allocations: crate::alloc_counter::thread_allocations(),
            heap_at_start: crate::alloc_counter::thread_heap(),
        })
    }

    /// What was consumed from `start` to `self`.
    pub fn since(self, start: CpuTimes) -> CpuTimes {
        CpuTimes {
            ns: self.ns.saturating_sub(start.ns),
            user_ticks: self.user_ticks.saturating_sub(start.user_ticks),
            sys_ticks: self.sys_ticks.saturating_sub(start.sys_ticks),
            allocations: self.allocations.saturating_sub(start.allocations),
            heap_at_start: start.heap_at_start,
        }
    }

    /// The share of the ticks spent in user mode (`NaN` if no tick was seen).
    pub fn user_share(self) -> f64 {
        self.user_ticks as f64 / (self.user_ticks + self.sys_ticks) as f64
    }
}

/// CPU time consumed so far by the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    text.split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected schedstat contents: {text:?}")))
}

/// CPU time consumed so far by the calling thread, in nanoseconds, from
/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`: unlike `schedstat`, which the kernel brings up to
/// date only at scheduler ticks and context switches (so a thread that runs without a break
/// reads in steps of a tick), it adds the running slice, so it is exact for short phases too.
/// (Through the `cpu-time` crate, which calls libc's `clock_gettime`: rustix's own vDSO lookup
/// crashes under valgrind, and the timer benchmark is profiled with callgrind.)
pub fn thread_cpu_ns_exact() -> u64 {
    u64::try_from(cpu_time::ThreadTime::now().as_duration().as_nanos()).unwrap_or(u64::MAX)
}

/// The calling thread's user and kernel time so far, in clock ticks (`stat` fields 14, 15).
fn thread_user_sys_ticks() -> io::Result<(u64, u64)> {
    parse_user_sys_ticks(&std::fs::read_to_string("/proc/thread-self/stat")?)
}

/// Fields 14 and 15 (`utime`, `stime`, clock ticks) of a `/proc/.../stat` line.
pub fn parse_user_sys_ticks(text: &str) -> io::Result<(u64, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (field(11), field(12)) {
        (Some(user), Some(sys)) => Ok((user, sys)),
        _ => Err(io::Error::other(format!(
            "unexpected stat contents: {text:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = CpuTimes::now().unwrap();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        let used = CpuTimes::now().unwrap().since(before);
        assert!(used.ns > 0);
        assert!(used.user_ticks + used.sys_ticks <= used.ns / 10_000_000 + 2);
    }

    #[test]
    fn exact_cpu_time_grows_with_work() {
        let before = thread_cpu_ns_exact();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns_exact() > before);
    }
}
