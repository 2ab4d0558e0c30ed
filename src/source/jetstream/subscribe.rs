//! What we ask Jetstream for: the `/subscribe` URL of an instance with its query parameters,
//! as Jetstream's v1 wire (which every public instance serves) defines them:
//!
//! - `wantedCollections` (repeated; an NSID like `app.bsky.feed.post` or a prefix like
//!   `app.bsky.graph.*`; at most 100): commits of other collections are not sent. Identity
//!   and account events are sent whatever the collections.
//! - `wantedDids` (repeated; at most 10,000): only these accounts.
//! - `cursor`: a `time_us`; the server replays from the first event it saw at or after it
//!   (or from the oldest it keeps, silently, when the cursor is older than that).
//! - `compress=true`: binary frames, zstd with Jetstream's dictionary (see [`super::zstd`]).
//! - `maxMessageSizeBytes`: the server skips events larger than this (uncompressed).
//!
//! A long DID list does not fit in a URL (proxies refuse request lines of a few KiB), so past
//! [`MAX_QUERY`] the filter is sent the other documented way: connect with
//! `requireHello=true` and send an `options_update` message first; the server starts nothing
//! until it has it.

use std::fmt::Write as _;
use std::path::Path;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::JetstreamError;

/// The collection asked for when none is given: Bluesky posts.
pub(crate) const DEFAULT_COLLECTION: &str = "app.bsky.feed.post";
/// Jetstream's limits on one subscription.
pub(crate) const MAX_COLLECTIONS: usize = 100;
pub(crate) const MAX_DIDS: usize = 10_000;
/// Longest query string sent in the URL; longer filters go in an `options_update` message.
pub(crate) const MAX_QUERY: usize = 4096;

/// Characters left as they are in a query value (RFC 3986 unreserved, and `:` of DIDs).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'*');

/// One Jetstream instance: where to connect and what to ask for there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub secure: bool,
    pub host: String,
    pub port: u16,
    /// Path, and any query parameters of the user's own, without `?`-joined ones of ours.
    pub path: String,
    pub query: Option<String>,
}

impl Endpoint {
    /// Reads an instance's URL: `wss://host[:port][/path]`, `ws://…`, `https://`/`http://`
    /// (taken as `wss`/`ws`), or a bare host name (`wss://host/subscribe`). The path defaults
    /// to `/subscribe`.
    pub(crate) fn parse(s: &str) -> Result<Endpoint, JetstreamError> {
        let bad = |why: &str| JetstreamError::Url {
            url: s.to_string(),
            why: why.to_string(),
        };
        let (secure, rest) = match s.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "wss" | "https" => (true, rest),
                "ws" | "http" => (false, rest),
                _ => return Err(bad("the scheme must be wss:// or ws://")),
            },
            None => (true, s),
        };
        let (authority, path_query) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => match rest.find('?') {
                Some(at) => (&rest[..at], &rest[at..]),
                None => (rest, ""),
            },
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("no host name"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad port"))?;
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_query, None),
        };
        let path = if path.is_empty() || path == "/" {
            "/subscribe".to_string()
        } else {
            path.to_string()
        };
        let query = query.filter(|q| !q.is_empty()).map(str::to_string);
        if let Some(q) = &query {
            for pair in q.split('&') {
                let name = pair.split('=').next().unwrap_or("");
                if matches!(
                    name,
                    "wantedCollections"
                        | "wantedDids"
                        | "cursor"
                        | "compress"
                        | "requireHello"
                        | "maxMessageSizeBytes"
                ) {
                    return Err(bad(&format!(
                        "tweetpipe sets `{name}` itself (from the subscription and the cursor \
                         it keeps); leave it out of the URL"
                    )));
                }
            }
        }
        Ok(Endpoint {
            secure,
            port: port.unwrap_or(if secure { 443 } else { 80 }),
            host: host.to_string(),
            path,
            query,
        })
    }

    /// `wss://host[:port]/path` without our parameters, for logs and the state file.
    pub(crate) fn display(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        let default_port = if self.secure { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut s = format!("{scheme}://{host}");
        if self.port != default_port {
            let _ = write!(s, ":{}", self.port);
        }
        s.push_str(&self.path);
        s
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

/// The filter and options of the subscription, the same on every instance and reconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub collections: Vec<String>,
    pub dids: Vec<String>,
    /// `compress=true`.
    pub compress: bool,
    /// `maxMessageSizeBytes`; 0: none.
    pub max_message_bytes: usize,
}

/// What to connect to and, in hello mode, the message to send first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub url: String,
    pub hello: Option<String>,
}

impl Subscription {
    /// Validates the filter (as Jetstream would: a refused subscription is an HTTP 400 on
    /// every reconnect, better caught before the first).
    pub(crate) fn new(
        collections: Vec<String>,
        dids: Vec<String>,
        compress: bool,
        max_message_bytes: usize,
    ) -> Result<Subscription, JetstreamError> {
        let collections = dedup(collections);
        let dids = dedup(dids);
        if collections.len() > MAX_COLLECTIONS {
            return Err(JetstreamError::Collection(format!(
                "{} collections, Jetstream takes at most {MAX_COLLECTIONS}; a prefix like \
                 app.bsky.feed.* covers several",
                collections.len()
            )));
        }
        if dids.len() > MAX_DIDS {
            return Err(JetstreamError::Did(format!(
                "{} accounts, Jetstream takes at most {MAX_DIDS} per connection",
                dids.len()
            )));
        }
        for c in &collections {
            if !valid_collection(c) {
                return Err(JetstreamError::Collection(format!(
                    "{c:?} is not a collection NSID (like app.bsky.feed.post) or a prefix \
                     ending in .* (like app.bsky.graph.*)"
                )));
            }
        }
        for d in &dids {
            if !valid_did(d) {
                return Err(JetstreamError::Did(format!(
                    "{d:?} is not a DID (like did:plc:ewvi7nxzyoun6zhxrhs64oiz)"
                )));
            }
        }
        Ok(Subscription {
            collections,
            dids,
            compress,
            max_message_bytes,
        })
    }

    /// The request for `endpoint`, resuming at `cursor` (a `time_us`) if given.
    pub(crate) fn request(
        &self,
        endpoint: &Endpoint,
        cursor: Option<i64>,
        compress: bool,
    ) -> Request {
        let mut filter = String::new();
        for c in &self.collections {
            push_param(&mut filter, "wantedCollections", c);
        }
        for d in &self.dids {
            push_param(&mut filter, "wantedDids", d);
        }
        if self.max_message_bytes > 0 {
            push_param(
                &mut filter,
                "maxMessageSizeBytes",
                &self.max_message_bytes.to_string(),
            );
        }
        let mut query = endpoint.query.clone().unwrap_or_default();
        let hello = if filter.len() > MAX_QUERY {
            push_param(&mut query, "requireHello", "true");
            Some(self.options_update())
        } else {
            if !filter.is_empty() {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(&filter);
            }
            None
        };
        if let Some(c) = cursor {
            push_param(&mut query, "cursor", &c.to_string());
        }
        if compress {
            push_param(&mut query, "compress", "true");
        }
        let mut url = endpoint.display();
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        Request { url, hello }
    }

    /// The `options_update` message that carries the filter in hello mode.
    fn options_update(&self) -> String {
        serde_json::json!({
            "type": "options_update",
            "payload": {
                "wantedCollections": self.collections,
                "wantedDids": self.dids,
                "maxMessageSizeBytes": self.max_message_bytes,
            }
        })
        .to_string()
    }
}

fn push_param(q: &mut String, name: &str, value: &str) {
    if !q.is_empty() {
        q.push('&');
    }
    q.push_str(name);
    q.push('=');
    q.extend(utf8_percent_encode(value, QUERY_VALUE));
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.clone()))
        .collect()
}

/// An NSID (`app.bsky.feed.post`: three or more dot-separated segments of letters, digits and
/// hyphens) or a prefix of one ending in `.*`, as Jetstream accepts them.
fn valid_collection(c: &str) -> bool {
    let segment = |s: &str| {
        !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if let Some(head) = c.strip_suffix(".*") {
        return !head.is_empty() && head.split('.').all(segment);
    }
    c.len() <= 317 && c.split('.').count() >= 3 && c.split('.').all(segment)
}

/// `did:<method>:<id>` with atproto's character rules.
fn valid_did(d: &str) -> bool {
    let Some(rest) = d.strip_prefix("did:") else {
        return false;
    };
    let Some((method, id)) = rest.split_once(':') else {
        return false;
    };
    d.len() <= 2048
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_lowercase())
        && !id.is_empty()
        && !id.ends_with(':')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'%' | b'-'))
}

/// Reads a list of accounts: comma separated, or `@FILE` with DIDs separated by newlines,
/// commas or spaces (`#` starts a comment).
pub(crate) fn parse_dids(arg: &str) -> Result<Vec<String>, JetstreamError> {
    let text;
    let list = match arg.strip_prefix('@') {
        Some(path) => {
            text = std::fs::read_to_string(Path::new(path)).map_err(|source| {
                JetstreamError::DidsFile {
                    path: path.into(),
                    source,
                }
            })?;
            text.lines()
                .map(|l| l.split('#').next().unwrap_or(""))
                .flat_map(|l| l.split([',', ' ', '\t']))
                .map(str::to_string)
                .collect::<Vec<_>>()
        }
        None => arg.split(',').map(str::to_string).collect(),
    };
    Ok(list
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(collections: &[&str], dids: &[&str]) -> Subscription {
        Subscription::new(
            collections.iter().map(|s| s.to_string()).collect(),
            dids.iter().map(|s| s.to_string()).collect(),
            true,
            0,
        )
        .unwrap()
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("wss://jetstream1.us-east.bsky.network/subscribe").unwrap();
        assert_eq!(
            (e.secure, e.host.as_str(), e.port, e.path.as_str()),
            (true, "jetstream1.us-east.bsky.network", 443, "/subscribe")
        );
        assert_eq!(
            e.display(),
            "wss://jetstream1.us-east.bsky.network/subscribe"
        );
        let e = Endpoint::parse("ws://127.0.0.1:6008").unwrap();
        assert_eq!((e.secure, e.port), (false, 6008));
        assert_eq!(e.display(), "ws://127.0.0.1:6008/subscribe");
        let e = Endpoint::parse("jetstream2.us-west.bsky.network").unwrap();
        assert_eq!(
            e.display(),
            "wss://jetstream2.us-west.bsky.network/subscribe"
        );
        let e = Endpoint::parse("https://example.org:8443/js/subscribe?token=x").unwrap();
        assert_eq!(e.display(), "wss://example.org:8443/js/subscribe");
        assert_eq!(e.query.as_deref(), Some("token=x"));
        let e = Endpoint::parse("ws://[::1]:9000/subscribe").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert_eq!(e.display(), "ws://[::1]:9000/subscribe");
        for bad in [
            "ftp://x/subscribe",
            "wss://",
            "wss://host:notaport/",
            "wss://host/subscribe?cursor=5",
            "wss://host/subscribe?wantedDids=did:plc:a",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(matches!(err, JetstreamError::Url { .. }), "{err}");
            assert!(err.to_string().contains("wss://jetstream1"), "{err}");
        }
    }

    #[test]
    fn urls() {
        let e = Endpoint::parse("ws://127.0.0.1:6008/subscribe").unwrap();
        let s = sub(&[DEFAULT_COLLECTION], &[]);
        assert_eq!(
            s.request(&e, None, true).url,
            "ws://127.0.0.1:6008/subscribe?wantedCollections=app.bsky.feed.post&compress=true"
        );
        let s = sub(
            &["app.bsky.feed.post", "app.bsky.graph.*"],
            &["did:plc:abc"],
        );
        let r = s.request(&e, Some(1_725_911_162_329_308), false);
        assert_eq!(
            r.url,
            "ws://127.0.0.1:6008/subscribe?wantedCollections=app.bsky.feed.post&\
             wantedCollections=app.bsky.graph.*&wantedDids=did:plc:abc&cursor=1725911162329308"
        );
        assert_eq!(r.hello, None);
        let s = sub(&[], &[]);
        assert_eq!(
            s.request(&e, None, false).url,
            "ws://127.0.0.1:6008/subscribe"
        );
        // The user's own parameters stay.
        let e = Endpoint::parse("wss://h/subscribe?token=x").unwrap();
        let s = Subscription::new(vec![], vec![], false, 4096).unwrap();
        assert_eq!(
            s.request(&e, Some(7), false).url,
            "wss://h/subscribe?token=x&maxMessageSizeBytes=4096&cursor=7"
        );
    }

    #[test]
    fn long_filters_go_in_a_hello_message() {
        let e = Endpoint::parse("ws://127.0.0.1:6008/subscribe").unwrap();
        let dids: Vec<String> = (0..500).map(|i| format!("did:plc:{i:024}")).collect();
        let s =
            Subscription::new(vec![DEFAULT_COLLECTION.into()], dids.clone(), true, 100).unwrap();
        let r = s.request(&e, Some(9), true);
        assert_eq!(
            r.url,
            "ws://127.0.0.1:6008/subscribe?requireHello=true&cursor=9&compress=true"
        );
        let hello: serde_json::Value = serde_json::from_str(&r.hello.unwrap()).unwrap();
        assert_eq!(hello["type"], "options_update");
        assert_eq!(
            hello["payload"]["wantedDids"].as_array().unwrap().len(),
            500
        );
        assert_eq!(hello["payload"]["wantedCollections"][0], DEFAULT_COLLECTION);
        assert_eq!(hello["payload"]["maxMessageSizeBytes"], 100);
    }

    #[test]
    fn validation() {
        assert!(Subscription::new(vec!["app.bsky.feed.post".into()], vec![], true, 0).is_ok());
        for bad in [
            "post",
            "app.bsky",
            "app..post",
            "app.bsky.fe*",
            "app.bsky.feed.post/x",
        ] {
            let err = Subscription::new(vec![bad.into()], vec![], true, 0).unwrap_err();
            assert!(matches!(err, JetstreamError::Collection(_)), "{bad}");
        }
        for bad in [
            "plc:abc",
            "did:plc:",
            "did:PLC:abc",
            "did:plc:a b",
            "did:plc:abc:",
        ] {
            let err = Subscription::new(vec![], vec![bad.into()], true, 0).unwrap_err();
            assert!(matches!(err, JetstreamError::Did(_)), "{bad}");
        }
        let many: Vec<String> = (0..101).map(|i| format!("a.b.c{i}")).collect();
        assert!(Subscription::new(many, vec![], true, 0).is_err());
        // Duplicates and blanks do not count.
        let s = Subscription::new(
            vec!["a.b.c".into(), " a.b.c ".into(), "".into()],
            vec![],
            true,
            0,
        )
        .unwrap();
        assert_eq!(s.collections, vec!["a.b.c"]);
    }

    #[test]
    fn did_lists() {
        assert_eq!(
            parse_dids("did:plc:a, did:web:example.com,").unwrap(),
            vec!["did:plc:a", "did:web:example.com"]
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dids.txt");
        std::fs::write(
            &path,
            "# people\ndid:plc:a\n\ndid:plc:b did:plc:c # three\n",
        )
        .unwrap();
        assert_eq!(
            parse_dids(&format!("@{}", path.display())).unwrap(),
            vec!["did:plc:a", "did:plc:b", "did:plc:c"]
        );
        let err = parse_dids("@/nonexistent/dids.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/dids.txt"), "{err}");
    }
}
