//! Where records come from: the live Twitter stream ([`twitter`]) and file replay
//! ([`replay`]), with the framing they share ([`framer`]).

pub mod framer;
pub mod replay;
pub mod twitter;
