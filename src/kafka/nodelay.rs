//! Sets `TCP_NODELAY` on the process's TCP sockets, i.e. on rskafka's broker connections.
//!
//! rskafka 0.6 writes each request's 4-byte length prefix and its body as two separate
//! writes and leaves Nagle's algorithm on. The body then waits for the ACK of the 4-byte
//! segment, which the broker delays (delayed ACK, ~40 ms on Linux), so every produce request
//! stalled that long (docs/performance.md). rskafka gives no access to its sockets, so we find
//! them ourselves: every TCP socket this process owns is ours, and `TCP_NODELAY` is the right
//! setting for all of them (the Twitter connection sets it too). It is re-applied
//! periodically because rskafka reconnects on its own after errors.

use std::time::Duration;

/// Returns how many sockets were switched to `TCP_NODELAY` (already-set ones count too).
pub fn apply() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut n = 0;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .map(|t| t.as_os_str().to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        if is_socket && set_nodelay_if_tcp(fd) {
            n += 1;
        }
    }
    n
}

fn set_nodelay_if_tcp(fd: libc::c_int) -> bool {
    // SAFETY: getsockopt/setsockopt only read or write the option values we pass; an fd that
    // was closed (or reused) in the meantime just makes them fail or touch another socket of
    // ours, for which TCP_NODELAY is equally right.
    unsafe {
        let mut proto: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PROTOCOL,
            (&mut proto as *mut libc::c_int).cast(),
            &mut len,
        ) != 0
            || proto != libc::IPPROTO_TCP
        {
            return false;
        }
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// Whether the workaround is on: `TWEETPIPE_KAFKA_NODELAY=0` turns it off (benchmarks use
/// that to show the difference).
pub fn enabled() -> bool {
    std::env::var("TWEETPIPE_KAFKA_NODELAY").map_or(true, |v| v != "0")
}

/// Applies now and then every `period`, for connections rskafka opens later.
pub fn spawn_keeper(period: Duration) -> Option<tokio::task::JoinHandle<()>> {
    if !enabled() {
        tracing::info!(
            "TCP_NODELAY workaround for Kafka connections is off (TWEETPIPE_KAFKA_NODELAY=0)"
        );
        return None;
    }
    apply();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            apply();
        }
    }))
}
