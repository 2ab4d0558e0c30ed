//! Everything about Twitter's side of `produce`: credentials, OAuth 1.0a signing (v1.1) and
//! bearer tokens (v2), the HTTP stream connection, the v2 stream's rules, framing the byte
//! stream into messages, classifying them, and the documented reconnect back-off. It knows nothing about Kafka: what it yields is handed to
//! the pipeline's channel.

pub mod client;
pub mod credentials;
pub mod message;
pub mod oauth;
pub mod rules;
pub mod scan;
pub mod stream;
