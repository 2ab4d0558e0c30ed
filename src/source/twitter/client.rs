//! The HTTP side of the stream on our own hyper client (rustls with webpki roots for
//! `https://`, plain TCP for `http://`): one OAuth-signed `POST statuses/filter` (v1.1), or one
//! `GET /2/tweets/search/stream` with the app's bearer token (v2).
//!
//! Each v1.1 attempt is signed afresh (new nonce and timestamp). Connections are never
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

use super::credentials::{BearerToken, Credentials};
use super::oauth;

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (OAuth's rule).
const OAUTH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The filter parameters, as `statuses/filter` names them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub(crate) track: Option<String>,
    pub(crate) follow: Option<String>,
    pub(crate) locations: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) delimited_length: bool,
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

/// What the v2 stream is asked to include with each tweet (`expansions`, `tweet.fields`,
/// `user.fields`), comma separated as the API takes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct V2Fields {
    pub(crate) expansions: String,
    pub(crate) tweet_fields: String,
    pub(crate) user_fields: String,
}

impl V2Fields {
    fn params(&self) -> Vec<(String, String)> {
        [
            ("expansions", &self.expansions),
            ("tweet.fields", &self.tweet_fields),
            ("user.fields", &self.user_fields),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            let v: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            (!v.is_empty()).then(|| (k.to_string(), v.join(",")))
        })
        .collect()
    }
}

/// How a request proves who we are.
enum Auth {
    /// v1.1: OAuth 1.0a over the URL, the query and the form body.
    OAuth1 {
        /// scheme://authority/path, the URL OAuth signs.
        base_url: String,
        /// Query parameters of `--stream-url` plus the form body's, all signed.
        signed_params: Vec<(String, String)>,
        body: String,
        creds: Credentials,
    },
    /// v2: the app's bearer token; the query carries the field selection.
    Bearer {
        token: BearerToken,
        query: Vec<(String, String)>,
    },
}

pub(crate) struct StreamClient {
    http: HttpClient,
    uri: Uri,
    auth: Auth,
}

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Our hyper client: never pooled, TCP_NODELAY and keep-alive probes on, a connect timeout.
pub(crate) fn http_client() -> HttpClient {
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
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(tls)
}

/// `pairs` as a query string, percent-encoded (RFC 3986 unreserved characters stay).
pub(crate) fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, OAUTH_ENCODE),
                utf8_percent_encode(v, OAUTH_ENCODE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl StreamClient {
    /// The v2 filtered stream at `uri` (`…/2/tweets/search/stream`).
    pub(crate) fn new_v2(uri: Uri, fields: &V2Fields, token: BearerToken) -> Self {
        let mut query = Vec::new();
        if let Some(q) = uri.query() {
            for pair in q.split('&').filter(|s| !s.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                query.push((decode(k), decode(v)));
            }
        }
        query.extend(fields.params());
        StreamClient {
            http: http_client(),
            uri,
            auth: Auth::Bearer { token, query },
        }
    }

    /// The v1.1 `statuses/filter` stream at `uri` (which has a scheme and a host), filtered
    /// by `filter` (at least one of track, follow or locations).
    pub(crate) fn new(uri: Uri, filter: &Filter, creds: Credentials) -> Self {
        let authority = uri
            .authority()
            .map_or(String::new(), |a| a.as_str().to_ascii_lowercase());
        let form = filter.params();
        let base_url = format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("https"),
            authority,
            uri.path()
        );
        let mut signed_params = Vec::new();
        if let Some(q) = uri.query() {
            for pair in q.split('&').filter(|s| !s.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                signed_params.push((decode(k), decode(v)));
            }
        }
        let body = query_string(&form);
        signed_params.extend(form);
        StreamClient {
            http: http_client(),
            uri,
            auth: Auth::OAuth1 {
                base_url,
                signed_params,
                body,
                creds,
            },
        }
    }

    /// Where we connect, for logs (no credentials in it).
    pub(crate) fn url(&self) -> String {
        self.uri.to_string()
    }

    pub(crate) fn is_v2(&self) -> bool {
        matches!(self.auth, Auth::Bearer { .. })
    }

    /// Sends the request and returns the response head; the body is the stream.
    /// `backfill_minutes` is asked for on v2 only (v1.1 has no such parameter).
    pub(crate) async fn open(
        &self,
        backfill_minutes: Option<u32>,
    ) -> std::result::Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let user_agent = concat!("tweetpipe/", env!("CARGO_PKG_VERSION"));
        let req = match &self.auth {
            Auth::OAuth1 {
                base_url,
                signed_params,
                body,
                creds,
            } => {
                let auth = oauth::authorization("POST", base_url, signed_params, creds, None);
                Request::post(self.uri.clone())
                    .header(hyper::header::AUTHORIZATION, auth)
                    .header(
                        hyper::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .header(hyper::header::ACCEPT_ENCODING, "gzip")
                    .header(hyper::header::USER_AGENT, user_agent)
                    .body(Full::new(Bytes::from(body.clone())))
                    .expect("request parts are valid")
            }
            Auth::Bearer { token, query } => {
                let mut query = query.clone();
                if let Some(m) = backfill_minutes {
                    query.push(("backfill_minutes".into(), m.to_string()));
                }
                let path_and_query = if query.is_empty() {
                    self.uri.path().to_string()
                } else {
                    format!("{}?{}", self.uri.path(), query_string(&query))
                };
                let uri = Uri::builder()
                    .scheme(self.uri.scheme_str().unwrap_or("https"))
                    .authority(self.uri.authority().expect("checked").as_str())
                    .path_and_query(path_and_query)
                    .build()
                    .expect("parts of a valid URI");
                Request::get(uri)
                    .header(hyper::header::AUTHORIZATION, token.header())
                    .header(hyper::header::ACCEPT_ENCODING, "gzip")
                    .header(hyper::header::USER_AGENT, user_agent)
                    .body(Full::new(Bytes::new()))
                    .expect("request parts are valid")
            }
        };
        self.http.request(req).await
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// What a non-200 status means when retrying cannot fix it; `None` when retrying is the right
/// answer. (What to check on the command line is the command line's to say.)
pub(crate) fn fatal_status_meaning(status: u16, v2: bool) -> Option<&'static str> {
    Some(match (status, v2) {
        (400, true) => "HTTP 400 Bad Request: the stream refused a parameter",
        (401, true) => "HTTP 401 Unauthorized: check TWITTER_BEARER_TOKEN (the app's bearer token from the developer portal)",
        (403, true) => "HTTP 403 Forbidden: this app's access level does not include the filtered stream, or its project is not set up for it; check the developer portal",
        (401, false) => "HTTP 401 Unauthorized: check TWITTER_CONSUMER_KEY, TWITTER_CONSUMER_SECRET, TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_TOKEN_SECRET, and that this machine's clock is right (OAuth signatures carry a timestamp)",
        (403, false) => "HTTP 403 Forbidden: these credentials are not allowed to use this endpoint (X retired statuses/filter in 2023); check the app's access level in the developer portal",
        (404, _) => "HTTP 404 Not Found: no stream at this URL",
        (406, false) => "HTTP 406 Not Acceptable: a filter parameter is malformed",
        (413, false) => "HTTP 413 Too Long: too many filter terms",
        (416, false) => "HTTP 416 Range Unacceptable: the endpoint refused a parameter (count is not allowed on statuses/filter)",
        _ => return None,
    })
}
