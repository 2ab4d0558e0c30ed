//! Tests of the Twitter stand-in itself (tests/support/twitter.rs), talking raw HTTP/1.1 over a
//! `TcpStream` so that what is checked is the bytes on the wire, not what some client makes of
//! them. The client's own tests trust the stand-in; these are why they may.

#[path = "support/twitter.rs"]
mod twitter;

use std::io::Read as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use twitter::{Action, Conn, Creds, StandIn};

const WAIT: Duration = Duration::from_secs(10);

/// How a test request is put together.
struct Req<'a> {
    creds: Creds,
    query: &'a str,
    form: &'a str,
    accept_gzip: bool,
}

impl Default for Req<'_> {
    fn default() -> Self {
        Req {
            creds: Creds::test(),
            query: "",
            form: "track=rust%2Ctokio&stall_warnings=true",
            accept_gzip: false,
        }
    }
}

struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    /// The body exactly as sent (still chunk-encoded for a 200).
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one hand-signed request and reads the whole response, until the server closes.
async fn exchange(server: &StandIn, req: Req<'_>) -> Response {
    let mut params = twitter::form_decode(req.query);
    params.extend(twitter::form_decode(req.form));
    let auth = twitter::authorization_header(
        &req.creds,
        "POST",
        &server.url(),
        &params,
        twitter::unix_now(),
        "selftest-nonce",
    );
    let target = if req.query.is_empty() {
        twitter::FILTER_PATH.to_string()
    } else {
        format!("{}?{}", twitter::FILTER_PATH, req.query)
    };
    let gzip = if req.accept_gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: {}\r\nauthorization: {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\n{gzip}Content-Length: {}\r\n\r\n{}",
        server.addr(),
        req.form.len(),
        req.form
    );

    let mut stream = TcpStream::connect(server.addr())
        .await
        .expect("connect to the stand-in");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")
        .expect("read the response");

    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..head_end].to_vec()).expect("UTF-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_string();
    let headers = lines
        .map(|l| l.split_once(':').expect("header line"))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    Response {
        status_line,
        headers,
        body: raw[head_end + 4..].to_vec(),
    }
}

/// Splits a chunked body into its chunks; the flag tells whether the terminating chunk arrived.
/// Whatever follows an incomplete chunk is returned as the last "chunk" with the flag false.
fn dechunk(mut body: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut chunks = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return (chunks, false);
        };
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16)
            .expect("hex chunk size");
        let data = &body[line_end + 2..];
        if size == 0 {
            assert_eq!(
                data, b"\r\n",
                "nothing but the final CRLF after the last chunk"
            );
            return (chunks, true);
        }
        if data.len() < size + 2 {
            chunks.push(data.to_vec());
            return (chunks, false);
        }
        assert_eq!(&data[size..size + 2], b"\r\n", "chunk data ends with CRLF");
        chunks.push(data[..size].to_vec());
        body = &data[size + 2..];
    }
}

fn gunzip(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(compressed).read_to_end(&mut out)?;
    Ok(out)
}

fn tweet(id: u64) -> Vec<u8> {
    format!(r#"{{"id":{id},"id_str":"{id}","text":"tweet number {id}"}}"#).into_bytes()
}

#[tokio::test]
async fn serves_three_records_as_three_chunks() {
    let script = vec![Conn::ok(vec![
        Action::Record(tweet(1)),
        Action::Record(tweet(2)),
        Action::Record(tweet(3)),
    ])];
    let server = StandIn::start(script, Creds::test()).await;

    let response = exchange(&server, Req::default()).await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.header("content-encoding"), None);
    let (chunks, terminated) = dechunk(&response.body);
    assert!(terminated);
    let expected: Vec<Vec<u8>> = (1..=3)
        .map(|id| [tweet(id), b"\r\n".to_vec()].concat())
        .collect();
    assert_eq!(chunks, expected);

    assert!(server.wait_for_connections(1, WAIT).await);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert!(seen.signature_ok, "{:?}", seen.auth_error);
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", twitter::FILTER_PATH)
    );
    assert_eq!(seen.param("track"), Some("rust,tokio"));
    assert_eq!(seen.param("stall_warnings"), Some("true"));
    assert!(seen.params.iter().all(|(k, _)| !k.starts_with("oauth_")));
    assert!(!seen.accept_gzip);
    assert!(seen
        .header("Authorization")
        .is_some_and(|v| v.starts_with("OAuth ")));
    assert_eq!(seen.script_index, Some(0));
}

#[tokio::test]
async fn bad_signature_gets_401_without_consuming_the_script() {
    let script = vec![Conn::ok(vec![Action::Record(tweet(1))]), Conn::status(420)];
    let server = StandIn::start(script, Creds::test()).await;

    let forged = Creds {
        token_secret: "not-the-secret".into(),
        ..Creds::test()
    };
    let response = exchange(
        &server,
        Req {
            creds: forged,
            ..Req::default()
        },
    )
    .await;
    assert_eq!(response.status_line, "HTTP/1.1 401 Unauthorized");
    assert!(String::from_utf8_lossy(&response.body).contains("Could not authenticate you"));

    // The script starts where it was: entry 0, then 420, then 420 again (the last entry repeats).
    let response = exchange(&server, Req::default()).await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        dechunk(&response.body),
        (vec![[tweet(1), b"\r\n".to_vec()].concat()], true)
    );
    for _ in 0..2 {
        let response = exchange(&server, Req::default()).await;
        assert_eq!(response.status_line, "HTTP/1.1 420 Enhance Your Calm");
        assert_eq!(
            response.header("content-length"),
            Some(response.body.len().to_string().as_str())
        );
    }

    assert!(server.wait_for_connections(4, WAIT).await);
    let seen = server.seen();
    assert_eq!(
        seen.iter().map(|s| s.signature_ok).collect::<Vec<_>>(),
        [false, true, true, true]
    );
    assert!(seen[0]
        .auth_error
        .as_deref()
        .is_some_and(|e| e.contains("oauth_signature")));
    assert_eq!(
        seen.iter().map(|s| s.script_index).collect::<Vec<_>>(),
        [None, Some(0), Some(1), Some(2)]
    );
    assert!(
        !server
            .wait_for_connections(5, Duration::from_millis(50))
            .await
    );
}

#[tokio::test]
async fn length_delimited_gzip_stream_decodes_as_it_arrives() {
    let batch = Arc::new((10..20).map(tweet).collect::<Vec<_>>());
    let script = vec![Conn::ok(vec![
        Action::Record(tweet(1)),
        Action::KeepAlive,
        Action::Sleep(Duration::from_millis(20)),
        Action::RecordSplit(tweet(2), 3),
        Action::Records(batch.clone()),
    ])
    .gzip()];
    let server = StandIn::start(script, Creds::test()).await;

    let response = exchange(
        &server,
        Req {
            query: "delimited=length",
            accept_gzip: true,
            ..Req::default()
        },
    )
    .await;
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    let (chunks, terminated) = dechunk(&response.body);
    assert!(terminated);
    // record, keep-alive, two halves, one batch, gzip trailer
    assert_eq!(chunks.len(), 6);

    let framed = |id| twitter::frame(&tweet(id), true);
    // Each chunk is sync-flushed: the first one alone already yields the first framed record.
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    decoder.write_all(&chunks[0]).unwrap();
    decoder.flush().unwrap();
    assert_eq!(decoder.get_ref(), &framed(1));

    let mut expected = [framed(1), b"\r\n".to_vec(), framed(2)].concat();
    for id in 10..20 {
        expected.extend(framed(id));
    }
    assert_eq!(gunzip(&chunks.concat()).unwrap(), expected);
    assert!(expected.starts_with(format!("{}\r\n{{\"id\":1,", tweet(1).len() + 2).as_bytes()));

    let seen = &server.seen()[0];
    assert!(seen.accept_gzip && seen.signature_ok);
    assert_eq!(seen.param("delimited"), Some("length"));
}

#[tokio::test]
async fn gzip_script_goes_plain_when_the_client_did_not_ask() {
    let server = StandIn::start(
        vec![Conn::ok(vec![Action::Record(tweet(1))]).gzip()],
        Creds::test(),
    )
    .await;
    let response = exchange(&server, Req::default()).await;
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(
        dechunk(&response.body),
        (vec![twitter::frame(&tweet(1), false)], true)
    );
    assert!(!server.seen()[0].accept_gzip);
}

#[tokio::test]
async fn faults_break_the_body_where_they_say() {
    let script = vec![
        Conn::ok(vec![Action::Record(tweet(1)), Action::DropMidChunk]),
        Conn::ok(vec![Action::Record(tweet(1)), Action::TruncateGzip]).gzip(),
        Conn::ok(vec![
            Action::Raw(b"{\"id\":".to_vec()),
            Action::Raw(b"7}\r\n".to_vec()),
            Action::End,
            Action::KeepAlive,
        ]),
    ];
    let server = StandIn::start(script, Creds::test()).await;

    // Cut mid-chunk: one whole record, then a chunk that never completes, and no terminator.
    let response = exchange(&server, Req::default()).await;
    let (chunks, terminated) = dechunk(&response.body);
    assert!(!terminated);
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0], twitter::frame(&tweet(1), false));

    // Truncated gzip: HTTP framing complete, but the gzip stream is not.
    let response = exchange(
        &server,
        Req {
            accept_gzip: true,
            ..Req::default()
        },
    )
    .await;
    let (chunks, terminated) = dechunk(&response.body);
    assert!(terminated);
    assert!(gunzip(&chunks.concat()).is_err());

    // Raw pieces go out as their own chunks; nothing is sent after End.
    let response = exchange(&server, Req::default()).await;
    assert_eq!(
        dechunk(&response.body),
        (vec![b"{\"id\":".to_vec(), b"7}\r\n".to_vec()], true)
    );
}

#[tokio::test]
async fn stall_holds_the_connection_until_the_client_leaves() {
    let server = StandIn::start(
        vec![Conn::ok(vec![Action::KeepAlive, Action::Stall])],
        Creds::test(),
    )
    .await;
    let params = twitter::form_decode("track=x");
    let auth = twitter::authorization_header(
        &Creds::test(),
        "POST",
        &server.url(),
        &params,
        twitter::unix_now(),
        "n",
    );
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\ntrack=x",
        twitter::FILTER_PATH,
        server.addr()
    );
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    // The head and the keep-alive arrive, then nothing: reading must still be pending after a while.
    let waited = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "the stand-in closed a stalled connection");
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(waited.is_err());
    assert!(received.ends_with(b"\r\n\r\n2\r\n\r\n\r\n"));
}
