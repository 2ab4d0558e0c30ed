//! Which version of each API we speak with a broker: at connect, ApiVersions tells what the
//! broker speaks; for each API we use the highest version both sides (the broker, and
//! kafka-protocol's request *and* response types) support. Callers that build
//! version-dependent shapes ask [`Connection::version`].

use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Message, StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use super::{decode_body, error_name, ApiRequest, Connection, RequestError};

impl Connection {
    /// Never use a version of `key` above `max` on this connection: for a broker whose newer
    /// version misbehaves, and to test the older request shapes against a new broker.
    pub(crate) fn cap_version(&mut self, key: ApiKey, max: i16) {
        if let Some(r) = self.broker_versions.get_mut(&(key as i16)) {
            r.max = r.max.min(max);
        }
    }

    /// The version of `R` we send: the highest that the broker and kafka-protocol (request and
    /// response type) all support.
    pub(crate) fn version<R: ApiRequest>(&self) -> Result<i16, RequestError> {
        let ours = R::VERSIONS.intersect(&<R::Response as Message>::VERSIONS);
        let Some(theirs) = self.broker_versions.get(&(R::KEY as i16)) else {
            return Err(RequestError::Unsupported {
                addr: self.addr.clone(),
                api: R::KEY,
            });
        };
        let both = ours.intersect(theirs);
        if both.is_empty() {
            return Err(RequestError::NoCommonVersion {
                addr: self.addr.clone(),
                api: R::KEY,
                theirs: *theirs,
                ours,
            });
        }
        Ok(both.max)
    }

    /// ApiVersions: send the newest version we know; a broker that does not know it answers
    /// UNSUPPORTED_VERSION with a v0 body listing its own range, and we retry within that.
    pub(super) async fn handshake(&mut self, limit: Duration) -> Result<(), RequestError> {
        let deadline = Instant::now() + limit;
        let mut version = ApiVersionsRequest::VERSIONS
            .max
            .min(ApiVersionsResponse::VERSIONS.max);
        let refused = |addr: &str, message: String| RequestError::Malformed {
            what: format!("ApiVersions with {addr}"),
            message,
        };
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
                    return Err(refused(
                        &self.addr,
                        "the broker rejected every ApiVersions version".into(),
                    ));
                };
                version = max;
                continue;
            }
            let resp =
                decode_body::<ApiVersionsResponse>(body, version, &self.addr, ApiKey::ApiVersions)?;
            if resp.error_code != 0 {
                return Err(refused(
                    &self.addr,
                    format!("answered with {}", error_name(resp.error_code)),
                ));
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
}
