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
//! - TLS and SASL as the [`Security`] settings say, with the same crates as rskafka
//!   (tokio-rustls, rsasl), so both of our Kafka paths authenticate alike.
//!
//! The parts: [`transport`] (TCP, TLS), [`versions`] (ApiVersions and version choice),
//! [`sasl`] (authentication), [`bootstrap`] (the first reachable broker of a list), [`error`].

mod bootstrap;
mod error;
mod sasl;
mod transport;
mod versions;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FetchRequest, FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Message, StrBytes, VersionRange,
};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) use bootstrap::connect_any;
pub(crate) use error::RequestError;
use transport::Transport;

use crate::kafka::security::Security;

const CLIENT_ID: &str = concat!("tweetpipe/", env!("CARGO_PKG_VERSION"));

/// Largest response we accept. Our responses are small (metadata, configs, offsets); a huge
/// length means we are not talking to Kafka (e.g. an HTTP or TLS port) and must not allocate it.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A request type we can send, with its API key and response type.
///
/// kafka-protocol's own `Request` trait is only implemented when both its `client` and
/// `broker` features are on, and the `broker` feature compiles a decoder for every request and
/// an encoder for every response, which we never use. So we name the pairs we use here; adding
/// an API is one line in the `apis!` list below.
pub(crate) trait ApiRequest: Encodable + Message + HeaderVersion {
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
    JoinGroupRequest => JoinGroupResponse, JoinGroup;
    SyncGroupRequest => SyncGroupResponse, SyncGroup;
    HeartbeatRequest => HeartbeatResponse, Heartbeat;
    LeaveGroupRequest => LeaveGroupResponse, LeaveGroup;
    ListGroupsRequest => ListGroupsResponse, ListGroups;
    DescribeGroupsRequest => DescribeGroupsResponse, DescribeGroups;
    ListOffsetsRequest => ListOffsetsResponse, ListOffsets;
    FetchRequest => FetchResponse, Fetch;
}

/// A Kafka error code as people look it up: `NOT_COORDINATOR (16)`.
pub(crate) fn error_name(code: i16) -> String {
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

/// A TCP connection to one broker.
pub(crate) struct Connection {
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
    /// Connects to `addr` (`HOST:PORT`), asks which API versions it speaks, and
    /// authenticates; `timeout` bounds all of that together, and each later request.
    pub(crate) async fn connect(
        addr: &str,
        timeout: Duration,
        security: &Security,
    ) -> Result<Connection, RequestError> {
        let started = Instant::now();
        let left = || {
            timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1))
        };
        let stream = transport::open(addr, timeout, security.tls.as_ref()).await?;
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            timeout,
            next_correlation_id: 0,
            broker_versions: HashMap::new(),
            broken: None,
        };
        conn.handshake(left()).await?;
        if let Some(sasl) = &security.sasl {
            conn.authenticate(sasl, left()).await?;
        }
        Ok(conn)
    }

    /// The broker's address as we dialled it.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` and waits (at most the connection's timeout) for its response.
    pub(crate) async fn request<R: ApiRequest>(
        &mut self,
        req: &R,
    ) -> Result<R::Response, RequestError> {
        self.request_within(req, self.timeout).await
    }

    /// Like [`Connection::request`], with an explicit time limit (callers with a deadline).
    pub(crate) async fn request_within<R: ApiRequest>(
        &mut self,
        req: &R,
        limit: Duration,
    ) -> Result<R::Response, RequestError> {
        let version = self.version::<R>()?;
        let body = self.exchange::<R>(req, version, limit).await?;
        decode_body::<R::Response>(body, version, &self.addr, R::KEY)
    }

    /// Writes one request frame and reads the matching response frame; returns the response
    /// body after its header. After a timeout or an I/O error the connection refuses further
    /// requests: a late response would be read as the answer to the next one.
    async fn exchange<R: ApiRequest>(
        &mut self,
        req: &R,
        version: i16,
        limit: Duration,
    ) -> Result<Bytes, RequestError> {
        if let Some(why) = &self.broken {
            return Err(RequestError::Broken {
                addr: self.addr.clone(),
                why: why.clone(),
            });
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let what = format!("{:?} request to {}", R::KEY, self.addr);
        let frame = encode_frame(req, R::KEY, version, correlation_id).map_err(|message| {
            RequestError::Malformed {
                what: format!("encoding {:?} v{version}", R::KEY),
                message,
            }
        })?;
        let result = match tokio::time::timeout(limit, self.round_trip(&frame, &what)).await {
            Ok(r) => r,
            Err(_) => Err(RequestError::Timeout {
                what: what.clone(),
                limit,
            }),
        };
        let mut body = result.inspect_err(|e| self.broken = Some(e.to_string()))?;
        let header = ResponseHeader::decode(&mut body, R::KEY.response_header_version(version))
            .map_err(|e| RequestError::Malformed {
                what: what.clone(),
                message: format!("undecodable response header: {e}"),
            })
            .inspect_err(|e| self.broken = Some(e.to_string()))?;
        if header.correlation_id != correlation_id {
            let e = RequestError::Malformed {
                what,
                message: format!(
                    "response has correlation id {}, expected {correlation_id}",
                    header.correlation_id
                ),
            };
            self.broken = Some(e.to_string());
            return Err(e);
        }
        Ok(body)
    }

    /// One frame out, one frame back.
    async fn round_trip(&mut self, frame: &[u8], what: &str) -> Result<Bytes, RequestError> {
        let io = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                RequestError::Closed {
                    what: what.to_string(),
                }
            } else {
                RequestError::Io {
                    what: what.to_string(),
                    source,
                }
            }
        };
        self.stream.write_all(frame).await.map_err(io)?;
        // TLS holds written bytes in its session until flushed; TCP ignores this.
        self.stream.flush().await.map_err(io)?;
        let len = self.stream.read_i32().await.map_err(io)?;
        let Some(size) = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_RESPONSE_BYTES)
        else {
            let bytes = len.to_be_bytes();
            // A TLS record (alert 0x15 or handshake 0x16, version 3.x) where a Kafka length
            // should be: a TLS listener answering our plaintext.
            return Err(if matches!(bytes[0], 0x15 | 0x16) && bytes[1] == 0x03 {
                RequestError::TlsListener {
                    what: what.to_string(),
                }
            } else {
                RequestError::Implausible {
                    what: what.to_string(),
                    len,
                }
            });
        };
        let mut buf = vec![0u8; size];
        self.stream.read_exact(&mut buf).await.map_err(io)?;
        Ok(Bytes::from(buf))
    }
}

/// One buffer holding length, header and body, so the frame goes out in one write.
fn encode_frame<R: ApiRequest>(
    req: &R,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let header_version = key.request_header_version(version);
    // kafka-protocol reports encode errors as anyhow errors; we keep their text.
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
) -> Result<T, RequestError> {
    T::decode(&mut body, version).map_err(|e| RequestError::Malformed {
        what: format!("{key:?} v{version} response from {addr}"),
        message: format!("undecodable: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::security::{Sasl, SaslMechanism};
    use tokio::net::TcpListener;
    use tokio::net::TcpStream;

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
            assert!(!e.is_retryable(), "not retried: {shown}");
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
        assert!(e.is_retryable());
        assert!(e.to_string().contains("is this a Kafka port?"), "{e}");
        drop(server.await.unwrap());
    }
}
