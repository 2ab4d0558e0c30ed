//! The HTTP server behind `--metrics-addr`, on hyper, on a thread of its own.
//!
//! Its own thread and single-threaded runtime keep it apart from the pipeline: a scrape, the
//! page's polling or a hostile client uses that thread's time, never a pipeline worker's, and
//! the pipeline never waits on it. It is bounded ([`Limits`]): at most 32 connections (more are
//! closed at once), request heads of at most 16 KiB read within 5 s, and no connection lives
//! longer than a minute. Request bodies are never read.
//!
//! The same thread takes the live page's point once a second ([`Metrics::sample`]): a few
//! atomic loads, whether anyone looks or not, so a page opened late has history to draw.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, Semaphore};

use super::{routes, Metrics, MetricsError};

/// How much one client may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections at once; more are closed unanswered.
    pub(crate) max_connections: usize,
    /// To read a request head.
    pub(crate) header_timeout: Duration,
    /// The longest a connection lives; keep-alive clients (a page polling every second)
    /// reconnect, so no client holds a slot forever.
    pub(crate) connection_lifetime: Duration,
}

impl Limits {
    /// A Prometheus server, a few browser tabs and a health checker need a handful.
    pub(crate) const DEFAULT: Limits = Limits {
        max_connections: 32,
        header_timeout: Duration::from_secs(5),
        connection_lifetime: Duration::from_secs(60),
    };
}

const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The running server; dropping it closes the listener and its connections.
pub(crate) struct Server {
    #[cfg_attr(not(test), allow(dead_code))]
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Where it listens (the real port when the address gave port 0).
    #[cfg(test)]
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn shut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Listens on `addr` (before returning, so a port in use is an error now) and serves
/// `metrics` until the returned [`Server`] is stopped or dropped.
pub(crate) fn serve(addr: SocketAddr, metrics: Metrics) -> Result<Server, MetricsError> {
    serve_with(addr, metrics, Limits::DEFAULT)
}

pub(crate) fn serve_with(
    addr: SocketAddr,
    metrics: Metrics,
    limits: Limits,
) -> Result<Server, MetricsError> {
    let bind = |e| MetricsError::Bind { addr, source: e };
    let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(MetricsError::Start)?;
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("tweetpipe-metrics".into())
        .spawn(move || runtime.block_on(run(listener, metrics, limits, stopped)))
        .map_err(MetricsError::Start)?;
    tracing::info!(addr = %local, "metrics: http://{local}/metrics, live page http://{local}/");
    Ok(Server {
        addr: local,
        stop: Some(stop),
        thread: Some(thread),
    })
}

async fn run(
    listener: std::net::TcpListener,
    metrics: Metrics,
    limits: Limits,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("metrics server cannot use its socket: {e}; no metrics are served");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refused_logged = false;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => metrics.sample(),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        // Over the limit: closed unanswered, and said once.
                        if !refused_logged {
                            tracing::warn!("metrics server: more than {} connections at once; closing the extra ones", limits.max_connections);
                            refused_logged = true;
                        }
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(limits.connection_lifetime, connection(stream, metrics, limits.header_timeout)).await;
                        drop(slot);
                    });
                }
                // Out of file descriptors, say: let the pipeline have them, try again later.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, metrics: Metrics, header_timeout: Duration) {
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let accept = req
            .headers()
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let response = routes::respond(&metrics, req.method(), path, accept);
        async move { Ok::<_, Infallible>(response) }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
