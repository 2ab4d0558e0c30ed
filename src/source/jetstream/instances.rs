//! Which Jetstream instance to read from, and when to move to another.
//!
//! Bluesky runs several public instances of the same stream; the user may name one or
//! several (a proxy, a private instance), and without it we use the public ones. The rule for
//! moving on: a connection *attempt* that fails (no connection, an HTTP error) or a
//! connection that the instance ends as going away (close codes 1001, 1012) or that stalls
//! tries the next instance; a connection that was working and dropped is tried again on the
//! same instance first, since its cursor is the most precise there (`time_us` is each
//! instance's own clock, so a cursor carried to another instance is rewound further; see
//! [`super::resume`]).

use super::subscribe::Endpoint;

/// Bluesky's public Jetstream instances (the `/subscribe` v1 endpoint), in the order tried.
pub(crate) const PUBLIC: [&str; 4] = [
    "wss://jetstream1.us-east.bsky.network/subscribe",
    "wss://jetstream2.us-east.bsky.network/subscribe",
    "wss://jetstream1.us-west.bsky.network/subscribe",
    "wss://jetstream2.us-west.bsky.network/subscribe",
];

/// The instances to use, and which one is current.
#[derive(Debug, Clone)]
pub(crate) struct Instances {
    endpoints: Vec<Endpoint>,
    current: usize,
    /// Consecutive attempts refused with a client error (4xx but 408/429), any instance.
    refusals: usize,
}

impl Instances {
    /// `endpoints` must not be empty.
    pub(crate) fn new(endpoints: Vec<Endpoint>) -> Self {
        assert!(!endpoints.is_empty(), "at least one Jetstream endpoint");
        Instances {
            endpoints,
            current: 0,
            refusals: 0,
        }
    }

    /// The public instances.
    pub(crate) fn public() -> Self {
        Instances::new(
            PUBLIC
                .iter()
                .map(|u| Endpoint::parse(u).expect("valid built-in URL"))
                .collect(),
        )
    }

    pub(crate) fn current(&self) -> (usize, &Endpoint) {
        (self.current, &self.endpoints[self.current])
    }

    pub(crate) fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Every instance's URL (`wss://host/subscribe`), in order.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.endpoints.iter().map(Endpoint::display).collect()
    }

    /// The index of the instance with this URL (as [`Instances::urls`] gives it).
    pub(crate) fn index_of(&self, url: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.display() == url)
    }

    /// Moves to the next instance (the same one when there is only one).
    pub(crate) fn fail_over(&mut self) {
        self.current = (self.current + 1) % self.endpoints.len();
    }

    /// A client error from the current instance; true once every instance has refused in a
    /// row (then the subscription itself is what is wrong).
    pub(crate) fn refused(&mut self) -> bool {
        self.refusals += 1;
        self.refusals >= self.endpoints.len()
    }

    /// A connection was established: refusals start counting from zero again.
    pub(crate) fn connected(&mut self) {
        self.refusals = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_counts_refusals() {
        let mut i = Instances::public();
        assert_eq!(i.len(), 4);
        assert_eq!(i.current().1.host, "jetstream1.us-east.bsky.network");
        i.fail_over();
        assert_eq!(i.current().0, 1);
        for _ in 0..3 {
            i.fail_over();
        }
        assert_eq!(i.current().0, 0);
        assert!(!i.refused());
        assert!(!i.refused());
        i.connected();
        assert!(!i.refused() && !i.refused() && !i.refused());
        assert!(i.refused());
    }
}
