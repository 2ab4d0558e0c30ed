//! The HTTP side of the stream: one signed `POST statuses/filter` on our own hyper client
//! (rustls with webpki roots for `https://`, plain TCP for `http://`).
//!
//! Each connection attempt is signed afresh (new nonce and timestamp). Connections are never
//! pooled: a stream is one long response, and a fresh attempt must be a fresh connection.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::credentials::Credentials;
use super::oauth;
use crate::error::{Error, Result};

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (OAuth's rule).
const OAUTH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The filter parameters, as `statuses/filter` names them.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub track: Option<String>,
    pub follow: Option<String>,
    pub locations: Option<String>,
    pub language: Option<String>,
    pub delimited_length: bool,
}

impl Filter {
    fn params(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut push = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                let v: Vec<&str> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                if !v.is_empty() {
                    p.push((k.to_string(), v.join(",")));
                }
            }
        };
        push("track", &self.track);
        push("follow", &self.follow);
        push("locations", &self.locations);
        push("language", &self.language);
        if self.delimited_length {
            p.push(("delimited".into(), "length".into()));
        }
        p.push(("stall_warnings".into(), "true".into()));
        p
    }
}

pub struct StreamClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    /// scheme://authority/path, the URL OAuth signs.
    base_url: String,
    /// Query parameters of `--stream-url` plus the form body's, all signed.
    signed_params: Vec<(String, String)>,
    body: String,
    creds: Credentials,
}

impl StreamClient {
    pub fn new(stream_url: &str, filter: &Filter, creds: Credentials) -> Result<Self> {
        let uri: Uri = stream_url.parse().map_err(|e| {
            Error::usage(format!("--stream-url {stream_url:?} is not a URL ({e}); give e.g. https://stream.twitter.com/1.1/statuses/filter.json"))
        })?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(Error::usage(format!(
                    "--stream-url {stream_url:?} must start with https:// (or http:// for a local server or proxy)"
                )))
            }
        }
        let Some(authority) = uri.authority() else {
            return Err(Error::usage(format!(
                "--stream-url {stream_url:?} has no host"
            )));
        };
        let form = filter.params();
        if !form
            .iter()
            .any(|(k, _)| k == "track" || k == "follow" || k == "locations")
        {
            return Err(Error::usage(
                "statuses/filter needs at least one of --track, --follow or --locations (or replay a file with --from-file)",
            ));
        }
        let base_url = format!(
            "{}://{}{}",
            uri.scheme_str().unwrap(),
            authority.as_str().to_ascii_lowercase(),
            uri.path()
        );
        let mut signed_params = Vec::new();
        if let Some(q) = uri.query() {
            for pair in q.split('&').filter(|s| !s.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                signed_params.push((decode(k), decode(v)));
            }
        }
        let body = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, OAUTH_ENCODE),
                    utf8_percent_encode(v, OAUTH_ENCODE)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        signed_params.extend(form);

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(30)));
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(tls);
        Ok(StreamClient {
            http,
            uri,
            base_url,
            signed_params,
            body,
            creds,
        })
    }

    /// Where we connect, for logs (no credentials in it).
    pub fn url(&self) -> String {
        self.uri.to_string()
    }

    /// Sends the signed request and returns the response head; the body is the stream.
    pub async fn open(
        &self,
    ) -> std::result::Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let auth = oauth::authorization(
            "POST",
            &self.base_url,
            &self.signed_params,
            &self.creds,
            None,
        );
        let req = Request::post(self.uri.clone())
            .header(hyper::header::AUTHORIZATION, auth)
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(hyper::header::ACCEPT_ENCODING, "gzip")
            .header(
                hyper::header::USER_AGENT,
                concat!("tweetpipe/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(self.body.clone())))
            .expect("request parts are valid");
        self.http.request(req).await
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// What a non-200 status tells the user to check; `None` when retrying is the right answer.
pub fn fatal_status_hint(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "HTTP 401 Unauthorized: check TWITTER_CONSUMER_KEY, TWITTER_CONSUMER_SECRET, TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_TOKEN_SECRET, and that this machine's clock is right (OAuth signatures carry a timestamp)",
        403 => "HTTP 403 Forbidden: these credentials are not allowed to use this endpoint; check the app's access level in the developer portal",
        404 => "HTTP 404 Not Found: check --stream-url",
        406 => "HTTP 406 Not Acceptable: a filter parameter is malformed; check --track, --follow (numeric user ids), --locations (lon,lat pairs, south-west first) and --language",
        413 => "HTTP 413 Too Long: too many filter terms; --track takes up to 400 keywords, --follow 5,000 ids, --locations 25 boxes",
        416 => "HTTP 416 Range Unacceptable: the endpoint refused a parameter (count is not allowed on statuses/filter); check --stream-url's query",
        _ => return None,
    })
}
