//! Enrichment of consumed tweets: text extraction, entities, language and sentiment.
//!
//! - [`vader`]: sentiment scores (VADER, a pure-Rust port of vaderSentiment 3.3.2 that agrees
//!   with the Python reference), with its lexicons embedded from `data/vader/`.

pub mod vader;
