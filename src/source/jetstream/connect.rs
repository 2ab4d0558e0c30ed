//! Opening one WebSocket connection to a Jetstream instance: TCP, then TLS for `wss://` with
//! our own rustls configuration (ring, as for Kafka and Twitter: one TLS stack in the binary),
//! then the HTTP upgrade, done by `tokio-tungstenite` over the stream we hand it.
//!
//! An HTTP status instead of the upgrade comes back with the start of its body (Jetstream
//! explains a 400 in plain text), for [`super::reconnect::http_status`] to judge.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use super::subscribe::Endpoint;

/// A plain or TLS byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One open connection.
pub(crate) type Socket = WebSocketStream<Box<dyn Io>>;

/// Why a connection could not be opened.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// DNS, TCP, TLS or the upgrade's HTTP exchange failed.
    Network(String),
    /// The server answered with this status instead of switching protocols.
    Http { status: u16, said: String },
}

/// The TLS client configuration for `wss://`: the system's CA store, else the Mozilla roots
/// compiled in; HTTP/1.1 only (the upgrade is an HTTP/1.1 request).
pub(crate) fn tls_config() -> Arc<ClientConfig> {
    with_roots(crate::tls::default_roots().0)
}

/// A TLS client configuration trusting `roots` (tests use their own CA).
pub(crate) fn with_roots(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Connects to `endpoint` and upgrades to a WebSocket at `url`.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    url: &str,
    tls: &Arc<ClientConfig>,
    ws: WebSocketConfig,
) -> Result<Socket, ConnectError> {
    let net = |what: &str, e: &dyn std::fmt::Display| {
        ConnectError::Network(format!("{what} {}:{}: {e}", endpoint.host, endpoint.port))
    };
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| net("cannot connect to", &e))?;
    // Small frames, read as they come: no Nagle delay on our pings and pongs.
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if endpoint.secure {
        let name = rustls_pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|e| net("not a TLS server name:", &e))?;
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| net("TLS handshake with", &e))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectError::Network(format!("bad request URL {url}: {e}")))?;
    request.headers_mut().insert(
        "user-agent",
        concat!("tweetpipe/", env!("CARGO_PKG_VERSION"))
            .parse()
            .expect("a valid header value"),
    );
    match tokio_tungstenite::client_async_with_config(request, stream, Some(ws)).await {
        Ok((socket, _response)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let said = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            Err(ConnectError::Http {
                status: response.status().as_u16(),
                said,
            })
        }
        Err(e) => Err(net("WebSocket upgrade with", &e)),
    }
}
