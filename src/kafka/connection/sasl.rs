//! SASL on our own connection: SaslHandshake v1 names the mechanism, then SaslAuthenticate
//! carries each token of the exchange (KIP-152) until rsasl says it is done, which for SCRAM
//! includes checking the broker's own proof. rskafka's connections use the same crate, so both
//! of our Kafka paths authenticate alike.

use std::time::{Duration, Instant};

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use super::{error_name, Connection, RequestError};
use crate::kafka::security::Sasl;

impl Connection {
    pub(super) async fn authenticate(
        &mut self,
        sasl: &Sasl,
        limit: Duration,
    ) -> Result<(), RequestError> {
        let deadline = Instant::now() + limit;
        let left = || left(deadline);
        let mechanism = sasl.mechanism.name();
        let addr = self.addr().to_string();
        let refused = |why: String| refused(&addr, sasl, why);
        let malformed = |message: String| malformed(&addr, sasl, message);
        if self.version::<SaslHandshakeRequest>()? < 1 {
            return Err(malformed(
                "the broker speaks only SaslHandshake v0 (Kafka before 1.0); tweetpipe needs v1"
                    .into(),
            ));
        }
        let req =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let resp = match self.request_within(&req, left()).await {
            Ok(r) => r,
            Err(e) if e.is_retryable() => {
                return Err(RequestError::SaslDropped {
                    mechanism,
                    source: Box::new(e),
                })
            }
            Err(e) => return Err(e),
        };
        if resp.error_code != 0 {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            let offered = if offered.is_empty() {
                "none".to_string()
            } else {
                offered.join(", ")
            };
            return Err(refused(format!(
                "{}; it offers {offered}",
                error_name(resp.error_code)
            )));
        }
        self.exchange_tokens(sasl, deadline).await
    }

    /// SaslAuthenticate, one token each way, until rsasl says the exchange is complete.
    async fn exchange_tokens(
        &mut self,
        sasl: &Sasl,
        deadline: Instant,
    ) -> Result<(), RequestError> {
        use rsasl::prelude::{Mechname, SASLClient, SASLConfig};
        let left = || left(deadline);
        let mechanism = sasl.mechanism.name();
        let addr = self.addr().to_string();
        let refused = |why: String| refused(&addr, sasl, why);
        let malformed = |message: String| malformed(&addr, sasl, message);
        let config = SASLConfig::with_credentials(
            None,
            sasl.username.clone(),
            sasl.password.expose().to_string(),
        )
        .map_err(|e| malformed(format!("setting up: {e}")))?;
        let name = Mechname::parse(mechanism.as_bytes()).map_err(|e| malformed(e.to_string()))?;
        let mut session = SASLClient::new(config)
            .start_suggested(&[name])
            .map_err(|e| malformed(format!("starting: {e}")))?;
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
}

/// Time left until `deadline`, at least a millisecond.
fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

fn refused(addr: &str, sasl: &Sasl, why: String) -> RequestError {
    RequestError::SaslRefused {
        addr: addr.to_string(),
        mechanism: sasl.mechanism.name(),
        user: sasl.username.clone(),
        why,
    }
}

fn malformed(addr: &str, sasl: &Sasl, message: String) -> RequestError {
    RequestError::Malformed {
        what: format!("SASL {} with {addr}", sasl.mechanism.name()),
        message,
    }
}
