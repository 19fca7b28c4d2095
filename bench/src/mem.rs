//! A process's resident memory, from `/proc/self/statm` or `/proc/PID/statm`.

use std::io;

/// Page size assumed for `statm`'s page counts (Linux on x86-64 and most aarch64 kernels).
const PAGE_SIZE: u64 = 4096;

/// Resident set size of this process, in bytes (`statm`'s second field, in pages).
pub fn rss_bytes() -> io::Result<u64> {
    rss_bytes_of("/proc/self/statm")
}

/// Resident set size, in bytes, from the `statm` file at `path` (`/proc/PID/statm`).
pub fn rss_bytes_of(path: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.split_whitespace()
        .nth(1)
        .and_then(|field| field.parse::<u64>().ok())
        .map(|pages| pages * PAGE_SIZE)
        .ok_or_else(|| io::Error::other(format!("unexpected {path} contents: {text:?}")))
}
