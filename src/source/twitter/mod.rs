//! Twitter's side of `produce`: credentials, OAuth 1.0a signing (v1.1) and bearer tokens
//! (v2), the HTTP stream connection ([`client`], [`stream`]), the v2 stream's rules
//! ([`rules`]), and what each message is ([`message`], on the structural scanner [`scan`]).
//! It knows nothing about Kafka: what it reads goes to a [`crate::source::Output`].

pub(crate) mod client;
pub(crate) mod credentials;
pub(crate) mod message;
pub(crate) mod oauth;
pub(crate) mod rules;
pub(crate) mod scan;
pub(crate) mod stream;
