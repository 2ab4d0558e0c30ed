//! A connection of our own to one Kafka broker, for the APIs rskafka does not speak (consumer
//! group offsets, CreateTopics with configs, DescribeConfigs).
//!
//! The wire format is Kafka's: each request is a 4-byte big-endian length followed by a
//! request header (API key, version, correlation id, client id) and the body; responses come
//! back the same way, in order. Message types come from the `kafka-protocol` crate, built with
//! its `client` feature only (no compression codecs: these APIs carry no record batches, and
//! its zstd/lz4 codecs would link C code).
//!
//! Design choices, and why:
//! - One request at a time: the callers (topic admin, offset commits once a second) are not
//!   throughput-bound, and strictly sequential use makes matching responses trivial.
//! - Every request (and the connect, and the ApiVersions handshake) has a time limit, because a
//!   broker that accepts a connection and then says nothing would otherwise hang us forever.
//!   After a timeout or an I/O error the connection is unusable (a late response would be read
//!   as the answer to the next request), so it refuses further requests and the caller
//!   reconnects.
//! - Length prefix and body go out in one write, with `TCP_NODELAY`: two writes with Nagle on
//!   stall each request on the broker's delayed ACK (see `nodelay.rs` for the rskafka case).
//! - TLS and SASL as `--kafka-tls`/`--sasl-mechanism` say ([`Security`]), with the same
//!   crates as rskafka (tokio-rustls, rsasl), so both of our Kafka paths authenticate alike.
//!   SASL uses SaslHandshake v1 and SaslAuthenticate (KIP-152), right after ApiVersions.
//! - Versions: at connect, ApiVersions tells what the broker speaks; for each API we use the
//!   highest version both sides (broker, and kafka-protocol's request *and* response types)
//!   support. Callers that build version-dependent shapes ask [`Connection::version`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Message, StrBytes, VersionRange,
};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::kafka::security::{Sasl, Security};

/// The byte stream under a connection: plain TCP, or TLS over TCP.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

const CLIENT_ID: &str = concat!("tweetpipe/", env!("CARGO_PKG_VERSION"));

/// Largest response we accept. Our responses are small (metadata, configs, offsets); a huge
/// length means we are not talking to Kafka (e.g. an HTTP or TLS port) and must not allocate it.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A request type we can send, with its API key and response type.
///
/// kafka-protocol's own `Request` trait is only implemented when both its `client` and
/// `broker` features are on, and the `broker` feature compiles a decoder for every request and
/// an encoder for every response, which we never use. So we name the pairs we use here; adding
/// an API (e.g. JoinGroup for full group membership) is one line in the `apis!` list below.
pub trait ApiRequest: Encodable + Message + HeaderVersion {
    const KEY: ApiKey;
    type Response: Decodable + Message + HeaderVersion;
}

macro_rules! apis {
    ($($req:ident => $resp:ident, $key:ident;)*) => {
        $(impl ApiRequest for $req {
            const KEY: ApiKey = ApiKey::$key;
            type Response = $resp;
        })*
    };
}

apis! {
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions;
    MetadataRequest => MetadataResponse, Metadata;
    FindCoordinatorRequest => FindCoordinatorResponse, FindCoordinator;
    OffsetFetchRequest => OffsetFetchResponse, OffsetFetch;
    OffsetCommitRequest => OffsetCommitResponse, OffsetCommit;
    CreateTopicsRequest => CreateTopicsResponse, CreateTopics;
    DescribeConfigsRequest => DescribeConfigsResponse, DescribeConfigs;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
}

/// A Kafka error code as people look it up: `NOT_COORDINATOR (16)`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE (0)".to_string(),
        Some(ResponseError::Unknown(c)) => format!("error code {c}"),
        Some(e) => {
            // kafka-protocol names the variants in CamelCase; Kafka's docs and tools use
            // SCREAMING_SNAKE_CASE.
            let camel = format!("{e:?}");
            let mut name = String::with_capacity(camel.len() + 8);
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    name.push('_');
                }
                name.push(ch.to_ascii_uppercase());
            }
            format!("{name} ({code})")
        }
    }
}

/// How a request failed: the connection (reconnect and maybe retry) or the exchange itself.
#[derive(Debug)]
pub enum RequestError {
    /// I/O error, timeout, or a connection already broken: reconnecting may help.
    Connection(String),
    /// The broker does not speak a version of this API we know, the bytes made no sense, or
    /// the broker refused us (TLS certificate, SASL authentication): retrying will not help.
    Protocol(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Connection(m) | RequestError::Protocol(m) => f.write_str(m),
        }
    }
}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        Error::runtime(e.to_string())
    }
}

/// A TCP connection to one broker.
pub struct Connection {
    addr: String,
    stream: Box<dyn Transport>,
    timeout: Duration,
    next_correlation_id: i32,
    /// API key → the broker's supported range, from ApiVersions.
    broker_versions: HashMap<i16, VersionRange>,
    /// Set after a timeout or I/O error: the byte stream is out of step.
    broken: Option<String>,
}

impl Connection {
    /// Connects to `addr` (`HOST:PORT`) and asks which API versions it speaks; `timeout` bounds
    /// the connect and the handshake together, and each later request.
    pub async fn connect(
        addr: &str,
        timeout: Duration,
        security: &Security,
    ) -> std::result::Result<Connection, RequestError> {
        let started = Instant::now();
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(RequestError::Connection(format!(
                    "connecting to {addr}: {e}"
                )))
            }
            Err(_) => {
                return Err(RequestError::Connection(format!(
                    "connecting to {addr}: no connection within {timeout:?}"
                )))
            }
        };
        stream.set_nodelay(true).map_err(|e| {
            RequestError::Connection(format!(
                "setting TCP_NODELAY on the connection to {addr}: {e}"
            ))
        })?;
        let stream: Box<dyn Transport> = match &security.tls {
            None => Box::new(stream),
            Some(config) => {
                let left = timeout.saturating_sub(started.elapsed());
                Box::new(tls(addr, stream, config, left).await?)
            }
        };
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            timeout,
            next_correlation_id: 0,
            broker_versions: HashMap::new(),
            broken: None,
        };
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        conn.handshake(left).await?;
        if let Some(sasl) = &security.sasl {
            let left = timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1));
            conn.authenticate(sasl, left).await?;
        }
        Ok(conn)
    }

    /// SASL: SaslHandshake v1 names the mechanism, then SaslAuthenticate carries each token
    /// of the exchange (one for PLAIN; client-first, client-final for SCRAM) until rsasl says
    /// it is done, which for SCRAM includes checking the broker's own proof.
    async fn authenticate(
        &mut self,
        sasl: &Sasl,
        limit: Duration,
    ) -> std::result::Result<(), RequestError> {
        use rsasl::prelude::{Mechname, SASLClient, SASLConfig};
        let deadline = Instant::now() + limit;
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        let mechanism = sasl.mechanism.name();
        let addr = self.addr.clone();
        let refused = |what: String| {
            RequestError::Protocol(format!(
                "broker {addr} refused SASL {mechanism} for user {:?}: {what}",
                sasl.username
            ))
        };
        let version = self.version::<SaslHandshakeRequest>()?;
        if version < 1 {
            return Err(RequestError::Protocol(format!(
                "broker {} speaks only SaslHandshake v0 (Kafka before 1.0); tweetpipe needs v1",
                self.addr
            )));
        }
        let req =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let resp = match self.request_within(&req, left()).await {
            Ok(r) => r,
            // Some brokers (tansu) hang up instead of answering UNSUPPORTED_SASL_MECHANISM.
            Err(RequestError::Connection(m)) => {
                return Err(RequestError::Connection(format!(
                    "{m} (during SaslHandshake: does the broker offer {mechanism}?)"
                )))
            }
            Err(e) => return Err(e),
        };
        if resp.error_code != 0 {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(refused(format!(
                "{}; it offers {}",
                error_name(resp.error_code),
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            )));
        }
        let config = SASLConfig::with_credentials(
            None,
            sasl.username.clone(),
            sasl.password.expose().to_string(),
        )
        .map_err(|e| RequestError::Protocol(format!("setting up SASL {mechanism}: {e}")))?;
        let name = Mechname::parse(mechanism.as_bytes())
            .map_err(|e| RequestError::Protocol(format!("SASL mechanism {mechanism}: {e}")))?;
        let mut session = SASLClient::new(config)
            .start_suggested(&[name])
            .map_err(|e| RequestError::Protocol(format!("starting SASL {mechanism}: {e}")))?;
        let mut received: Option<Vec<u8>> = None;
        loop {
            let mut token = Vec::new();
            let state = session
                .step(received.as_deref(), &mut token)
                .map_err(|e| refused(format!("the {mechanism} exchange ended with: {e}")))?;
            if state.has_sent_message() {
                let req = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
                let resp = self.request_within(&req, left()).await?;
                if resp.error_code != 0 {
                    let detail = resp
                        .error_message
                        .as_ref()
                        .map(|m| format!(" ({})", m.as_str()))
                        .unwrap_or_default();
                    return Err(refused(format!("{}{detail}", error_name(resp.error_code))));
                }
                received = Some(resp.auth_bytes.to_vec());
            }
            if state.is_finished() {
                return Ok(());
            }
        }
    }

    /// The broker's address as we dialled it.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The default time limit of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Never use a version of `key` above `max` on this connection: for a broker whose newer
    /// version misbehaves, and to test the older request shapes against a new broker.
    pub fn cap_version(&mut self, key: ApiKey, max: i16) {
        if let Some(r) = self.broker_versions.get_mut(&(key as i16)) {
            r.max = r.max.min(max);
        }
    }

    /// The version of `R` we send: the highest that the broker and kafka-protocol (request and
    /// response type) all support.
    pub fn version<R: ApiRequest>(&self) -> std::result::Result<i16, RequestError> {
        let ours = R::VERSIONS.intersect(&<R::Response as Message>::VERSIONS);
        let name = format!("{:?}", R::KEY);
        let Some(theirs) = self.broker_versions.get(&(R::KEY as i16)) else {
            return Err(RequestError::Protocol(format!(
                "broker {} does not support the {name} API",
                self.addr
            )));
        };
        let both = ours.intersect(theirs);
        if both.is_empty() {
            return Err(RequestError::Protocol(format!(
                "broker {} speaks {name} versions {theirs}, we speak {ours}: no version in common",
                self.addr
            )));
        }
        Ok(both.max)
    }

    /// Sends `req` and waits (at most the connection's timeout) for its response.
    pub async fn request<R: ApiRequest>(
        &mut self,
        req: &R,
    ) -> std::result::Result<R::Response, RequestError> {
        self.request_within(req, self.timeout).await
    }

    /// Like [`Connection::request`], with an explicit time limit (callers with a deadline).
    pub async fn request_within<R: ApiRequest>(
        &mut self,
        req: &R,
        limit: Duration,
    ) -> std::result::Result<R::Response, RequestError> {
        let version = self.version::<R>()?;
        let body = self.exchange::<R>(req, version, limit).await?;
        decode_body::<R::Response>(body, version, &self.addr, R::KEY)
    }

    /// ApiVersions: send the newest version we know; a broker that does not know it answers
    /// UNSUPPORTED_VERSION with a v0 body listing its own range, and we retry within that.
    async fn handshake(&mut self, limit: Duration) -> std::result::Result<(), RequestError> {
        let deadline = Instant::now() + limit;
        let mut version = ApiVersionsRequest::VERSIONS
            .max
            .min(ApiVersionsResponse::VERSIONS.max);
        loop {
            let mut req = ApiVersionsRequest::default();
            if version >= 3 {
                req.client_software_name = StrBytes::from_static_str("tweetpipe");
                req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let body = self
                .exchange::<ApiVersionsRequest>(&req, version, left)
                .await?;
            // The error code is the first field in every version, so it can be read before
            // knowing which version the broker answered in.
            if body.len() >= 2
                && i16::from_be_bytes([body[0], body[1]])
                    == ResponseError::UnsupportedVersion.code()
                && version > 0
            {
                let v0 =
                    decode_body::<ApiVersionsResponse>(body, 0, &self.addr, ApiKey::ApiVersions)?;
                let theirs = v0
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16);
                let Some(max) = theirs.map(|k| k.max_version).filter(|m| *m < version) else {
                    return Err(RequestError::Protocol(format!(
                        "broker {} rejected every ApiVersions version",
                        self.addr
                    )));
                };
                version = max;
                continue;
            }
            let resp =
                decode_body::<ApiVersionsResponse>(body, version, &self.addr, ApiKey::ApiVersions)?;
            if resp.error_code != 0 {
                return Err(RequestError::Protocol(format!(
                    "broker {} answered ApiVersions with {}",
                    self.addr,
                    error_name(resp.error_code)
                )));
            }
            self.broker_versions = resp
                .api_keys
                .iter()
                .map(|k| {
                    (
                        k.api_key,
                        VersionRange {
                            min: k.min_version,
                            max: k.max_version,
                        },
                    )
                })
                .collect();
            return Ok(());
        }
    }

    /// Writes one request frame and reads the matching response frame; returns the response
    /// body after its header.
    async fn exchange<R: ApiRequest>(
        &mut self,
        req: &R,
        version: i16,
        limit: Duration,
    ) -> std::result::Result<Bytes, RequestError> {
        if let Some(why) = &self.broken {
            return Err(RequestError::Connection(format!(
                "connection to {} is unusable after an earlier failure ({why})",
                self.addr
            )));
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_frame(req, R::KEY, version, correlation_id).map_err(|e| {
            RequestError::Protocol(format!("encoding {:?} v{version}: {e}", R::KEY))
        })?;
        let what = format!("{:?} request to {}", R::KEY, self.addr);
        let io = async {
            self.stream.write_all(&frame).await?;
            // TLS holds written bytes in its session until flushed; TCP ignores this.
            self.stream.flush().await?;
            let len = self.stream.read_i32().await?;
            let len = usize::try_from(len)
                .ok()
                .filter(|l| *l <= MAX_RESPONSE_BYTES)
                .ok_or_else(|| {
                    let bytes = len.to_be_bytes();
                    // A TLS record (alert 0x15 or handshake 0x16, version 3.x) where a Kafka
                    // length should be: a TLS listener answering our plaintext.
                    let why = if matches!(bytes[0], 0x15 | 0x16) && bytes[1] == 0x03 {
                        "the broker answered with TLS: add --kafka-tls".to_string()
                    } else {
                        format!("response length {len} is not plausible; is this a Kafka port?")
                    };
                    std::io::Error::new(std::io::ErrorKind::InvalidData, why)
                })?;
            let mut buf = vec![0u8; len];
            self.stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(Bytes::from(buf))
        };
        let mut body = match tokio::time::timeout(limit, io).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                let msg = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    // What a broker that wants TLS or SASL does to a client that skipped it.
                    format!("{what}: the broker closed the connection (if it requires TLS or SASL, see --kafka-tls and --sasl-mechanism)")
                } else {
                    format!("{what}: {e}")
                };
                self.broken = Some(msg.clone());
                return Err(RequestError::Connection(msg));
            }
            Err(_) => {
                let msg = format!("{what}: no answer within {limit:?}");
                self.broken = Some(msg.clone());
                return Err(RequestError::Connection(msg));
            }
        };
        let header = ResponseHeader::decode(&mut body, R::KEY.response_header_version(version))
            .map_err(|e| {
                self.broken = Some(format!("undecodable response header: {e}"));
                RequestError::Protocol(format!("{what}: undecodable response header: {e}"))
            })?;
        if header.correlation_id != correlation_id {
            let msg = format!(
                "{what}: response has correlation id {}, expected {correlation_id}",
                header.correlation_id
            );
            self.broken = Some(msg.clone());
            return Err(RequestError::Protocol(msg));
        }
        Ok(body)
    }
}

/// TLS over `stream`, verifying the broker's certificate for the host part of `addr`.
async fn tls(
    addr: &str,
    stream: TcpStream,
    config: &std::sync::Arc<rustls::ClientConfig>,
    limit: Duration,
) -> std::result::Result<tokio_rustls::client::TlsStream<TcpStream>, RequestError> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        RequestError::Protocol(format!("{host:?} is not a host name TLS can verify: {e}"))
    })?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(config));
    match tokio::time::timeout(limit, connector.connect(name, stream)).await {
        Ok(Ok(s)) => Ok(s),
        // A refused certificate will be refused again: not worth retrying.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => Err(RequestError::Protocol(
            format!("TLS with {addr}: {e}"),
        )),
        Ok(Err(e)) => Err(RequestError::Connection(format!("TLS with {addr}: {e}"))),
        Err(_) => Err(RequestError::Connection(format!(
            "TLS with {addr}: no handshake within {limit:?} (a plaintext port stays silent like this)"
        ))),
    }
}

/// One buffer holding length, header and body, so the frame goes out in one write.
fn encode_frame<R: ApiRequest>(
    req: &R,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
) -> std::result::Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let header_version = key.request_header_version(version);
    // kafka-protocol reports encode errors as anyhow errors; we keep them as strings.
    let size = header
        .compute_size(header_version)
        .map_err(|e| e.to_string())?
        + req.compute_size(version).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(i32::try_from(size).map_err(|_| format!("request of {size} bytes is too large"))?);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| e.to_string())?;
    req.encode(&mut buf, version).map_err(|e| e.to_string())?;
    Ok(buf)
}

fn decode_body<T: Decodable>(
    mut body: Bytes,
    version: i16,
    addr: &str,
    key: ApiKey,
) -> std::result::Result<T, RequestError> {
    T::decode(&mut body, version).map_err(|e| {
        RequestError::Protocol(format!(
            "{key:?} v{version} response from {addr}: undecodable: {e}"
        ))
    })
}

/// Connects to the first reachable broker of `brokers`, trying each in turn (each attempt
/// bounded by `timeout`).
pub async fn connect_any(
    brokers: &[String],
    timeout: Duration,
    security: &Security,
) -> Result<Connection> {
    connect_any_or_refused(brokers, timeout, security)
        .await
        .map_err(|(e, _)| e)
}

/// Like [`connect_any`]; the error also says whether waiting could help: `false` when a
/// broker refused us (certificate, SASL, a protocol we cannot speak), which no amount of
/// waiting fixes, `true` when none could be reached.
pub async fn connect_any_or_refused(
    brokers: &[String],
    timeout: Duration,
    security: &Security,
) -> std::result::Result<Connection, (Error, bool)> {
    let mut failures = Vec::new();
    let mut refused = false;
    for b in brokers {
        match Connection::connect(b, timeout, security).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::debug!(broker = %b, error = %e, "bootstrap broker unusable");
                refused |= matches!(e, RequestError::Protocol(_));
                failures.push(e.to_string());
            }
        }
    }
    let error = Error::runtime(format!(
        "cannot reach Kafka at {} ({}): {}. {}",
        brokers.join(","),
        security.describe(),
        failures.join("; "),
        security.hint()
    ));
    Err((error, !refused))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::security::SaslMechanism;
    use tokio::net::TcpListener;

    /// Reads one request frame; returns (api key, api version, correlation id).
    async fn read_request(s: &mut TcpStream) -> (i16, i16, i32) {
        let len = s.read_i32().await.unwrap() as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.unwrap();
        let be16 = |i: usize| i16::from_be_bytes([buf[i], buf[i + 1]]);
        (
            be16(0),
            be16(2),
            i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        )
    }

    async fn write_frame(s: &mut TcpStream, correlation_id: i32, body: &[u8]) {
        let mut frame = Vec::new();
        frame.extend_from_slice(&(4 + body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&correlation_id.to_be_bytes());
        frame.extend_from_slice(body);
        s.write_all(&frame).await.unwrap();
    }

    /// An old broker that knows ApiVersions only up to v2 (and Metadata up to v5): the
    /// handshake falls back and versions are chosen within what it advertises.
    #[tokio::test]
    async fn handshake_falls_back_to_the_brokers_apiversions_version() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (key, version, cid) = read_request(&mut s).await;
            assert_eq!(
                (key, version),
                (18, 4),
                "first the newest ApiVersions we know"
            );
            // UNSUPPORTED_VERSION, v0 body: error, [api_key, min, max]
            let mut body = Vec::new();
            body.extend_from_slice(&35i16.to_be_bytes());
            body.extend_from_slice(&1i32.to_be_bytes());
            for v in [18i16, 0, 2] {
                body.extend_from_slice(&v.to_be_bytes());
            }
            write_frame(&mut s, cid, &body).await;
            let (key, version, cid) = read_request(&mut s).await;
            assert_eq!((key, version), (18, 2), "then the broker's newest");
            // v2 body: error 0, [api_key, min, max] x2, throttle_time_ms
            let mut body = Vec::new();
            body.extend_from_slice(&0i16.to_be_bytes());
            body.extend_from_slice(&2i32.to_be_bytes());
            for v in [18i16, 0, 2, 3, 0, 5] {
                body.extend_from_slice(&v.to_be_bytes());
            }
            body.extend_from_slice(&0i32.to_be_bytes());
            write_frame(&mut s, cid, &body).await;
            s
        });
        let conn = Connection::connect(&addr, Duration::from_secs(5), &Security::default())
            .await
            .expect("handshake");
        assert_eq!(conn.version::<MetadataRequest>().unwrap(), 5);
        let e = conn.version::<OffsetFetchRequest>().unwrap_err();
        assert!(
            e.to_string()
                .contains("does not support the OffsetFetch API"),
            "{e}"
        );
        drop(broker.await.unwrap());
    }

    /// Reads one request frame; returns (api key, api version, correlation id, body after
    /// the v1 request header).
    async fn read_request_body(s: &mut TcpStream) -> (i16, i16, i32, Vec<u8>) {
        let len = s.read_i32().await.unwrap() as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.unwrap();
        let be16 = |i: usize| i16::from_be_bytes([buf[i], buf[i + 1]]);
        let client_id_len = be16(8).max(0) as usize;
        let body = buf[10 + client_id_len..].to_vec();
        (
            be16(0),
            be16(2),
            i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            body,
        )
    }

    mod scram_server {
        //! The server side of SCRAM, from rsasl: it checks the client's proof against keys
        //! derived from the password, as a Kafka broker does with its stored credentials.
        use rsasl::callback::{Context, Request, SessionCallback, SessionData};
        use rsasl::mechanisms::scram::properties::ScramStoredPassword;
        use rsasl::mechanisms::scram::tools::{derive_keys, hash_password};
        use rsasl::prelude::{SessionError, Validation};
        use rsasl::property::AuthId;
        use rsasl::validate::{Validate, ValidationError};
        use sha2::Digest;

        pub struct Keys {
            pub user: String,
            pub salt: Vec<u8>,
            pub stored_key: Vec<u8>,
            pub server_key: Vec<u8>,
        }

        pub fn keys<D>(user: &str, password: &str) -> Keys
        where
            D: Digest
                + sha2::digest::core_api::BlockSizeUser
                + sha2::digest::FixedOutputReset
                + Clone
                + Sync,
        {
            let salt = b"tweetpipe-test-salt".to_vec();
            let mut salted = Default::default();
            hash_password::<D>(password.as_bytes(), 4096, &salt, &mut salted);
            let (client_key, server_key) = derive_keys::<D>(salted.as_slice());
            Keys {
                user: user.to_string(),
                salt,
                stored_key: D::digest(client_key).to_vec(),
                server_key: server_key.to_vec(),
            }
        }

        pub struct Authenticated;
        impl Validation for Authenticated {
            type Value = String;
        }

        impl SessionCallback for Keys {
            fn callback(
                &self,
                _: &SessionData,
                context: &Context,
                request: &mut Request,
            ) -> Result<(), SessionError> {
                if context.get_ref::<AuthId>() == Some(self.user.as_str()) {
                    request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
                        4096,
                        &self.salt,
                        &self.stored_key,
                        &self.server_key,
                    ))?;
                }
                Ok(())
            }

            fn validate(
                &self,
                _: &SessionData,
                context: &Context,
                validate: &mut Validate<'_>,
            ) -> Result<(), ValidationError> {
                let user = context.get_ref::<AuthId>().unwrap_or_default().to_string();
                validate.with::<Authenticated, _>(|| Ok(user))?;
                Ok(())
            }
        }
    }

    /// A broker that speaks ApiVersions v0, SaslHandshake v1 and SaslAuthenticate v0 and
    /// checks the SCRAM exchange with rsasl's server. Returns the authenticated user, or the
    /// error it answered with.
    async fn sasl_broker(
        listener: TcpListener,
        mechanism: &'static str,
        keys: scram_server::Keys,
    ) -> std::result::Result<String, String> {
        use rsasl::prelude::{Mechname, SASLConfig, SASLServer};
        let (mut s, _) = listener.accept().await.unwrap();
        // ApiVersions: the newest first, then v0 after our UNSUPPORTED_VERSION.
        let entries: [(i16, i16, i16); 3] = [(18, 0, 0), (17, 1, 1), (36, 0, 0)];
        let mut v0 = Vec::new();
        v0.extend_from_slice(&35i16.to_be_bytes());
        v0.extend_from_slice(&(entries.len() as i32).to_be_bytes());
        for (k, lo, hi) in entries {
            for v in [k, lo, hi] {
                v0.extend_from_slice(&v.to_be_bytes());
            }
        }
        let (_, _, cid, _) = read_request_body(&mut s).await;
        write_frame(&mut s, cid, &v0).await;
        let (key, version, cid, _) = read_request_body(&mut s).await;
        assert_eq!((key, version), (18, 0));
        v0[..2].copy_from_slice(&0i16.to_be_bytes());
        write_frame(&mut s, cid, &v0).await;

        let (key, version, cid, body) = read_request_body(&mut s).await;
        assert_eq!((key, version), (17, 1), "SaslHandshake v1");
        let asked = String::from_utf8(body[2..].to_vec()).unwrap();
        assert_eq!(asked, mechanism);
        let mut resp = 0i16.to_be_bytes().to_vec();
        resp.extend_from_slice(&1i32.to_be_bytes());
        resp.extend_from_slice(&(mechanism.len() as i16).to_be_bytes());
        resp.extend_from_slice(mechanism.as_bytes());
        write_frame(&mut s, cid, &resp).await;

        let config = SASLConfig::builder()
            .with_defaults()
            .with_callback(keys)
            .unwrap();
        let mut session = SASLServer::<scram_server::Authenticated>::new(config)
            .start_suggested(Mechname::parse(mechanism.as_bytes()).unwrap())
            .unwrap();
        loop {
            let (key, version, cid, body) = read_request_body(&mut s).await;
            assert_eq!((key, version), (36, 0), "SaslAuthenticate v0");
            let token = &body[4..];
            let mut out = Vec::new();
            let step = session.step(Some(token), &mut out);
            let mut resp = Vec::new();
            match &step {
                Ok(_) => {
                    resp.extend_from_slice(&0i16.to_be_bytes());
                    resp.extend_from_slice(&(-1i16).to_be_bytes());
                }
                Err(e) => {
                    let msg = format!("Authentication failed: {e}");
                    resp.extend_from_slice(&58i16.to_be_bytes());
                    resp.extend_from_slice(&(msg.len() as i16).to_be_bytes());
                    resp.extend_from_slice(msg.as_bytes());
                }
            }
            resp.extend_from_slice(&(out.len() as i32).to_be_bytes());
            resp.extend_from_slice(&out);
            write_frame(&mut s, cid, &resp).await;
            match step {
                Err(e) => return Err(e.to_string()),
                Ok(state) if state.is_finished() => {
                    return session
                        .validation()
                        .ok_or_else(|| "no validation".to_string())
                }
                Ok(_) => {}
            }
        }
    }

    fn sasl_security(mechanism: SaslMechanism, password: &str) -> Security {
        let mut security = Security::default();
        security.sasl = Some(Sasl {
            mechanism,
            username: "alice".into(),
            password: crate::kafka::security::Secret::new(password),
        });
        security
    }

    /// A successful SCRAM login (tansu here cannot hold a SCRAM user, see
    /// tests/kafka_security.rs), and a wrong password refused without being shown.
    #[tokio::test]
    async fn scram_login_is_accepted_with_the_right_password_only() {
        for (mechanism, name) in [
            (SaslMechanism::ScramSha256, "SCRAM-SHA-256"),
            (SaslMechanism::ScramSha512, "SCRAM-SHA-512"),
        ] {
            let keys = || match mechanism {
                SaslMechanism::ScramSha256 => scram_server::keys::<sha2::Sha256>("alice", "right"),
                _ => scram_server::keys::<sha2::Sha512>("alice", "right"),
            };
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let broker = tokio::spawn(sasl_broker(listener, name, keys()));
            let conn = Connection::connect(
                &addr,
                Duration::from_secs(5),
                &sasl_security(mechanism, "right"),
            )
            .await;
            assert!(conn.is_ok(), "{name}: {:?}", conn.err());
            assert_eq!(broker.await.unwrap(), Ok("alice".to_string()), "{name}");

            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let broker = tokio::spawn(sasl_broker(listener, name, keys()));
            let e = Connection::connect(
                &addr,
                Duration::from_secs(5),
                &sasl_security(mechanism, "wrong-pw-xyz"),
            )
            .await
            .err()
            .expect("a wrong password is refused");
            assert!(
                broker.await.unwrap().is_err(),
                "{name}: the server refused it"
            );
            let shown = e.to_string();
            assert!(
                matches!(e, RequestError::Protocol(_)),
                "not retried: {shown}"
            );
            assert!(
                shown.contains(&format!("refused SASL {name} for user \"alice\"")),
                "{shown}"
            );
            assert!(!shown.contains("wrong-pw-xyz"), "{shown}");
        }
    }

    /// Not a Kafka port (here: an HTTP server's answer): a clear error, no huge allocation.
    #[tokio::test]
    async fn an_implausible_length_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = read_request(&mut s).await;
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                .await
                .unwrap();
            s
        });
        let e = Connection::connect(&addr, Duration::from_secs(5), &Security::default())
            .await
            .err()
            .expect("an error");
        assert!(matches!(e, RequestError::Connection(_)));
        assert!(e.to_string().contains("is this a Kafka port?"), "{e}");
        drop(server.await.unwrap());
    }
}
