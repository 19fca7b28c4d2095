//! The calling thread's CPU time, from `/proc/thread-self/schedstat`.
//!
//! The first field of that file is the time the thread has spent running on a CPU, in
//! nanoseconds, user and kernel together (the scheduler's `sum_exec_runtime`). Kernel time
//! matters here: most of an echo server's work is its syscalls.

use std::io;

/// CPU time consumed so far by the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    text.split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected schedstat contents: {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = thread_cpu_ns().unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns().unwrap() > before);
    }
}
