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

/// What the v2 stream is asked to include with each tweet (`expansions`, `tweet.fields`,
/// `user.fields`), comma separated as the API takes them.
#[derive(Debug, Clone, Default)]
pub struct V2Fields {
    pub expansions: String,
    pub tweet_fields: String,
    pub user_fields: String,
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

pub struct StreamClient {
    http: HttpClient,
    uri: Uri,
    auth: Auth,
}

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Our hyper client: never pooled, TCP_NODELAY and keep-alive probes on, a connect timeout.
pub fn http_client() -> HttpClient {
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

/// Parses `--stream-url`: an `http(s)://` URL with a host. `example` shows a good one.
pub fn parse_url(stream_url: &str, example: &str) -> Result<Uri> {
    let uri: Uri = stream_url.parse().map_err(|e| {
        Error::usage(format!(
            "--stream-url {stream_url:?} is not a URL ({e}); give e.g. {example}"
        ))
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(Error::usage(format!(
                "--stream-url {stream_url:?} must start with https:// (or http:// for a local server or proxy)"
            )))
        }
    }
    if uri.authority().is_none() {
        return Err(Error::usage(format!(
            "--stream-url {stream_url:?} has no host"
        )));
    }
    Ok(uri)
}

/// `pairs` as a query string, percent-encoded (RFC 3986 unreserved characters stay).
pub fn query_string(pairs: &[(String, String)]) -> String {
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
    /// The v2 filtered stream at `stream_url` (`…/2/tweets/search/stream`).
    pub fn new_v2(stream_url: &str, fields: &V2Fields, token: BearerToken) -> Result<Self> {
        let uri = parse_url(stream_url, "https://api.twitter.com/2/tweets/search/stream")?;
        let mut query = Vec::new();
        if let Some(q) = uri.query() {
            for pair in q.split('&').filter(|s| !s.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                query.push((decode(k), decode(v)));
            }
        }
        query.extend(fields.params());
        Ok(StreamClient {
            http: http_client(),
            uri,
            auth: Auth::Bearer { token, query },
        })
    }

    pub fn new(stream_url: &str, filter: &Filter, creds: Credentials) -> Result<Self> {
        let uri = parse_url(
            stream_url,
            "https://stream.twitter.com/1.1/statuses/filter.json",
        )?;
        let authority = uri.authority().expect("checked by parse_url");
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
        let body = query_string(&form);
        signed_params.extend(form);
        Ok(StreamClient {
            http: http_client(),
            uri,
            auth: Auth::OAuth1 {
                base_url,
                signed_params,
                body,
                creds,
            },
        })
    }

    /// Where we connect, for logs (no credentials in it).
    pub fn url(&self) -> String {
        self.uri.to_string()
    }

    pub fn is_v2(&self) -> bool {
        matches!(self.auth, Auth::Bearer { .. })
    }

    /// Sends the request and returns the response head; the body is the stream.
    /// `backfill_minutes` is asked for on v2 only (v1.1 has no such parameter).
    pub async fn open(
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

/// What a non-200 status of the v2 stream tells the user to check; `None` when retrying is
/// the right answer.
pub fn fatal_status_hint_v2(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "HTTP 400 Bad Request: the stream refused a parameter; check --expansions, --tweet-fields, --user-fields and --stream-url's query",
        401 => "HTTP 401 Unauthorized: check TWITTER_BEARER_TOKEN (the app's bearer token from the developer portal)",
        403 => "HTTP 403 Forbidden: this app's access level does not include the filtered stream, or its project is not set up for it; check the developer portal",
        404 => "HTTP 404 Not Found: check --stream-url (the v2 stream is …/2/tweets/search/stream)",
        _ => return None,
    })
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
