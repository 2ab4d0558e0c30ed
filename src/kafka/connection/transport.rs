//! The byte stream under a [`super::Connection`]: TCP with `TCP_NODELAY`, or TLS over it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::RequestError;

/// Plain TCP or TLS over TCP.
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Opens `addr`, with TLS when `tls` is given; `timeout` bounds both steps together.
pub(super) async fn open(
    addr: &str,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn Transport>, RequestError> {
    let started = Instant::now();
    let what = || format!("connecting to {addr}");
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => {
            return Err(RequestError::Io {
                what: what(),
                source,
            })
        }
        Err(_) => {
            return Err(RequestError::Timeout {
                what: what(),
                limit: timeout,
            })
        }
    };
    // Length prefix and body go out in one write, but Nagle would still hold small requests
    // back behind the broker's delayed ACK.
    stream
        .set_nodelay(true)
        .map_err(|source| RequestError::Io {
            what: format!("setting TCP_NODELAY on the connection to {addr}"),
            source,
        })?;
    Ok(match tls {
        None => Box::new(stream),
        Some(config) => {
            let left = timeout.saturating_sub(started.elapsed());
            Box::new(handshake(addr, stream, config, left).await?)
        }
    })
}

/// TLS over `stream`, verifying the broker's certificate for the host part of `addr`.
async fn handshake(
    addr: &str,
    stream: TcpStream,
    config: &Arc<rustls::ClientConfig>,
    limit: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, RequestError> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        RequestError::HostName {
            host: host.to_string(),
            reason: e.to_string(),
        }
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    match tokio::time::timeout(limit, connector.connect(name, stream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(RequestError::Tls {
            addr: addr.to_string(),
            source,
        }),
        Err(_) => Err(RequestError::TlsTimeout {
            addr: addr.to_string(),
            limit,
        }),
    }
}
