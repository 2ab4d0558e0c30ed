//! The credentials: the four OAuth 1.0a ones of the v1.1 stream, or the app's bearer token
//! (OAuth 2.0 app-only) of API v2. The command line reads them, from the environment or an
//! env file only (flags would land in shell history and `ps`); their `Debug` form is redacted
//! so no log line or error can carry them.

use std::fmt;

#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) consumer_key: String,
    pub(crate) consumer_secret: String,
    pub(crate) access_token: String,
    pub(crate) access_token_secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials { <redacted> }")
    }
}

/// The v2 app-only bearer token. Only [`BearerToken::header`] reveals it, to build the
/// `Authorization` header; `Debug` and `Display` are redacted.
#[derive(Clone)]
pub(crate) struct BearerToken(String);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// A token as read from the environment (see `cli::credentials`).
    pub(crate) fn new(token: String) -> Self {
        BearerToken(token)
    }

    /// The `Authorization` header value. The only way to see the token.
    pub(crate) fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_debug_is_redacted() {
        let t = BearerToken("AAAAtoken-value".into());
        assert!(!format!("{t:?}").contains("token-value"));
        assert_eq!(t.header(), "Bearer AAAAtoken-value");
    }

    #[test]
    fn debug_is_redacted() {
        let c = Credentials {
            consumer_key: "ck".into(),
            consumer_secret: "very-secret".into(),
            access_token: "at".into(),
            access_token_secret: "also-secret".into(),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("secret-") && !s.contains("very") && !s.contains("also"));
    }
}
