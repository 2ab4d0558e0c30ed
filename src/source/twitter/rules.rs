//! The v2 filtered stream's rules, `…/2/tweets/search/stream/rules`: list, add, delete, and
//! sync (make the server's rules equal to a wanted set), for `tweetpipe rules` and for
//! `produce --api v2 --track`.
//!
//! Rules live on Twitter, not in our configuration, so every change is a request whose answer
//! matters: the server's `meta.summary` (created, not created, deleted, …) and each rule's
//! error (invalid syntax, duplicate, …) are shown as they come, and a dry run sends the same
//! request with `dry_run=true`, which Twitter validates without applying.
//!
//! A rule is "the same" as a wanted one when value and tag both match: a rule whose tag
//! changed is deleted and added again, so `matching_rules` carries the new tag.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use serde::Deserialize;
use serde_json::json;

use super::client::{http_client, HttpClient};
use super::credentials::BearerToken;
use crate::source::Error;

type Result<T, E = Error> = std::result::Result<T, E>;

/// One request to the rules endpoint may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A rule as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) value: String,
    #[serde(default)]
    pub(crate) tag: Option<String>,
}

/// A rule we want.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WantedRule {
    pub(crate) value: String,
    #[serde(default)]
    pub(crate) tag: Option<String>,
}

/// What one add or delete request did, as the server reported it.
#[derive(Debug, Default)]
pub(crate) struct Changed {
    /// `meta.summary`, in the server's words (`created=1 not_created=0 valid=1 invalid=0`).
    pub(crate) summary: String,
    /// One line per error the server reported for a rule.
    pub(crate) errors: Vec<String>,
    /// Of those, errors that mean the request was wrong (not merely "already there").
    pub(crate) rejected: usize,
}

pub(crate) struct RulesApi {
    http: HttpClient,
    uri: Uri,
    token: BearerToken,
}

impl RulesApi {
    /// The rules endpoint belonging to the stream at `stream` (that URL plus `/rules`);
    /// `stream` has a scheme and a host.
    pub(crate) fn new(stream: &Uri, token: BearerToken) -> Self {
        let rules = format!(
            "{}://{}{}/rules",
            stream.scheme_str().unwrap_or("https"),
            stream.authority().map_or("", |a| a.as_str()),
            stream.path().trim_end_matches('/')
        );
        RulesApi {
            http: http_client(),
            uri: rules.parse().expect("built from a valid URI"),
            token,
        }
    }

    pub(crate) async fn list(&self) -> Result<Vec<Rule>> {
        #[derive(Deserialize)]
        struct Listed {
            #[serde(default)]
            data: Vec<Rule>,
        }
        let body = self.call(Method::GET, None, None).await?;
        let listed: Listed = serde_json::from_slice(&body).map_err(|e| {
            Error::Api(format!(
                "the rules endpoint {} answered something that is not a rule list ({e})",
                self.uri
            ))
        })?;
        Ok(listed.data)
    }

    pub(crate) async fn add(&self, rules: &[WantedRule], dry_run: bool) -> Result<Changed> {
        let add: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| match &r.tag {
                Some(tag) => json!({"value": r.value, "tag": tag}),
                None => json!({"value": r.value}),
            })
            .collect();
        let body = self
            .call(Method::POST, Some(json!({ "add": add })), Some(dry_run))
            .await?;
        Ok(changed(&body))
    }

    /// Deletes by id and by value (the API takes either list).
    pub(crate) async fn delete(
        &self,
        ids: &[String],
        values: &[String],
        dry_run: bool,
    ) -> Result<Changed> {
        let mut delete = serde_json::Map::new();
        if !ids.is_empty() {
            delete.insert("ids".into(), json!(ids));
        }
        if !values.is_empty() {
            delete.insert("values".into(), json!(values));
        }
        let body = self
            .call(
                Method::POST,
                Some(json!({ "delete": delete })),
                Some(dry_run),
            )
            .await?;
        Ok(changed(&body))
    }

    /// Makes the server's rules equal to `wanted`: deletes first (rule caps count what is
    /// there), then adds. Returns the report lines; fails if the server rejected any rule.
    pub(crate) async fn sync(&self, wanted: &[WantedRule], dry_run: bool) -> Result<Vec<String>> {
        let have = self.list().await?;
        let same = |r: &Rule, w: &WantedRule| r.value == w.value && r.tag == w.tag;
        let stale: Vec<&Rule> = have
            .iter()
            .filter(|r| !wanted.iter().any(|w| same(r, w)))
            .collect();
        let missing: Vec<WantedRule> = wanted
            .iter()
            .filter(|w| !have.iter().any(|r| same(r, w)))
            .cloned()
            .collect();
        let verb = if dry_run { "would" } else { "will" };
        let mut report = vec![format!(
            "{} rule(s) on the server, {} wanted: {} already match, {verb} delete {}, {verb} add {}",
            have.len(),
            wanted.len(),
            wanted.len() - missing.len(),
            stale.len(),
            missing.len()
        )];
        let mut rejected = 0;
        if !stale.is_empty() {
            for r in &stale {
                report.push(format!(
                    "delete {}",
                    describe(&r.id, &r.value, r.tag.as_deref())
                ));
            }
            let ids: Vec<String> = stale.iter().map(|r| r.id.clone()).collect();
            let c = self.delete(&ids, &[], dry_run).await?;
            rejected += c.rejected;
            report.push(format!("delete: {}", c.summary));
            report.extend(c.errors);
        }
        if !missing.is_empty() {
            for w in &missing {
                report.push(format!("add {}", describe("", &w.value, w.tag.as_deref())));
            }
            let c = self.add(&missing, dry_run).await?;
            rejected += c.rejected;
            report.push(format!("add: {}", c.summary));
            report.extend(c.errors);
        }
        if rejected > 0 {
            return Err(Error::RulesRejected {
                rejected,
                report: report.join("\n  "),
            });
        }
        Ok(report)
    }

    /// One request; a non-2xx answer is an error naming what to check.
    async fn call(
        &self,
        method: Method,
        body: Option<serde_json::Value>,
        dry_run: Option<bool>,
    ) -> Result<Bytes> {
        let uri: Uri = if dry_run == Some(true) {
            format!("{}?dry_run=true", self.uri)
                .parse()
                .expect("valid URI plus a query")
        } else {
            self.uri.clone()
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(hyper::header::AUTHORIZATION, self.token.header())
            .header(
                hyper::header::USER_AGENT,
                concat!("tweetpipe/", env!("CARGO_PKG_VERSION")),
            );
        let payload = match body {
            Some(b) => {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(&b).expect("JSON values serialize"))
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .expect("request parts are valid");
        let what = format!("{method} {}", self.uri);
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| {
                Error::Api(format!(
                    "{what}: cannot connect: {}",
                    crate::error::chain(&e)
                ))
            })?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::Api(format!("{what}: connection lost: {e}")))?
                .to_bytes();
            Ok::<_, Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| Error::Api(format!("{what}: no answer within {REQUEST_TIMEOUT:?}")))??;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let said = String::from_utf8_lossy(&body[..body.len().min(512)])
            .trim()
            .to_string();
        let hint = match status {
            401 => "check TWITTER_BEARER_TOKEN (the app's bearer token from the developer portal)",
            403 => "this app's access level or project does not allow the filtered stream's rules; check the developer portal",
            404 => "check the stream URL (rules are at the stream URL plus /rules)",
            429 => "too many rule requests; wait for the rate-limit window (15 minutes) and run again",
            _ => "see what the server said",
        };
        Err(Error::Api(format!(
            "{what}: HTTP {status}: {hint}. Server said: {said:?}"
        )))
    }
}

/// One rule, as listed and reported: id (when known), value, tag.
pub(crate) fn describe(id: &str, value: &str, tag: Option<&str>) -> String {
    let mut s = String::new();
    if !id.is_empty() {
        s.push_str(id);
        s.push('\t');
    }
    s.push_str(&format!("{value:?}"));
    if let Some(tag) = tag {
        s.push_str(&format!("\ttag={tag:?}"));
    }
    s
}

/// Reads `meta.summary` and `errors` of an add or delete answer.
fn changed(body: &[u8]) -> Changed {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let summary = match v.pointer("/meta/summary").and_then(|s| s.as_object()) {
        Some(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        None => "no summary in the answer".into(),
    };
    let mut out = Changed {
        summary,
        ..Changed::default()
    };
    for e in v
        .get("errors")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
    {
        let text = |k: &str| e.get(k).and_then(|x| x.as_str()).unwrap_or_default();
        let title = text("title");
        let mut line = format!("error: {title}");
        if !text("value").is_empty() {
            line.push_str(&format!(" for rule {:?}", text("value")));
        }
        if !text("id").is_empty() {
            line.push_str(&format!(" (id {})", text("id")));
        }
        let mut details: Vec<String> = e
            .get("details")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str().map(str::to_string))
            .collect();
        if !text("detail").is_empty() {
            details.push(text("detail").to_string());
        }
        for inner in e
            .get("errors")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(m) = inner.get("message").and_then(|m| m.as_str()) {
                details.push(m.to_string());
            }
        }
        if !details.is_empty() {
            line.push_str(": ");
            line.push_str(&details.join("; "));
        }
        // A duplicate means the rule is already there: what was asked for holds.
        if title != "DuplicateRule" {
            out.rejected += 1;
        }
        out.errors.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_errors_are_read_plainly() {
        let body = br#"{"meta":{"sent":"2026-01-01T00:00:00.000Z","summary":{"created":1,"not_created":2,"valid":1,"invalid":2}},"errors":[{"value":"cat","id":"17","title":"DuplicateRule","type":"https://api.twitter.com/2/problems/duplicate-rules"},{"value":"(dog","details":["Unmatched parenthesis."],"title":"UnprocessableEntity","type":"https://api.twitter.com/2/problems/invalid-rules"}]}"#;
        let c = changed(body);
        assert_eq!(c.summary, "created=1 invalid=2 not_created=2 valid=1");
        assert_eq!(c.rejected, 1);
        assert_eq!(c.errors[0], "error: DuplicateRule for rule \"cat\" (id 17)");
        assert_eq!(
            c.errors[1],
            "error: UnprocessableEntity for rule \"(dog\": Unmatched parenthesis."
        );
    }
}
