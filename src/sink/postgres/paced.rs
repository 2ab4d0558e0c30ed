//! A bounded hand-over that never blocks the hand-over itself: [`Paced::push`] queues what the
//! channel has no room for, and [`Paced::room`] waits until it has gone in. The writer pushes a
//! batch's COPY pieces without waiting, then waits for room before it takes the next fetch, so
//! the database's pace is the fetches' pace and the backlog stays bounded.

use std::collections::VecDeque;

use tokio::sync::mpsc::{self, error::TrySendError};

pub(crate) struct Paced<T> {
    tx: mpsc::Sender<T>,
    /// Items pushed while the channel was full, in order.
    waiting: VecDeque<T>,
}

impl<T> Paced<T> {
    pub(crate) fn new(tx: mpsc::Sender<T>) -> Self {
        Paced {
            tx,
            waiting: VecDeque::new(),
        }
    }

    /// Hands `item` over, or queues it behind those waiting. Once the receiver is gone
    /// everything is dropped: its owner finds out from the receiver's side.
    pub(crate) fn push(&mut self, item: T) {
        if !self.waiting.is_empty() {
            self.waiting.push_back(item);
            return;
        }
        match self.tx.try_send(item) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(item)) => self.waiting.push_back(item),
        }
    }

    /// Waits until every item pushed is in the channel. Cancel-safe (the writer races it with
    /// a stop signal): an item leaves the queue only once it has its place.
    pub(crate) async fn room(&mut self) {
        while !self.waiting.is_empty() {
            match self.tx.reserve().await {
                Ok(place) => place.send(self.waiting.pop_front().expect("not empty")),
                Err(_) => self.waiting.clear(),
            }
        }
    }

    /// How many items wait for room.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `rx` receives until its senders are gone.
    async fn all_of(mut rx: mpsc::Receiver<i32>) -> Vec<i32> {
        let mut got = Vec::new();
        while let Some(i) = rx.recv().await {
            got.push(i);
        }
        got
    }

    #[tokio::test]
    async fn keeps_the_order_and_bounds_the_channel() {
        let (tx, rx) = mpsc::channel(2);
        let mut paced = Paced::new(tx);
        for i in 0..5 {
            paced.push(i);
        }
        assert_eq!(paced.waiting(), 3, "the channel holds 2, the rest wait");
        let reader = tokio::spawn(all_of(rx));
        paced.room().await;
        assert_eq!(paced.waiting(), 0);
        paced.push(5);
        paced.room().await;
        drop(paced);
        assert_eq!(reader.await.unwrap(), vec![0, 1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_cancelled_wait_for_room_loses_nothing() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut paced = Paced::new(tx);
        for i in 0..4 {
            paced.push(i);
        }
        // Nobody reads: the wait is cut short, as by a stop signal, again and again.
        for _ in 0..3 {
            let cut = tokio::time::timeout(std::time::Duration::from_millis(5), paced.room());
            assert!(cut.await.is_err());
        }
        assert_eq!(rx.recv().await, Some(0));
        let cut = tokio::time::timeout(std::time::Duration::from_millis(5), paced.room());
        assert!(cut.await.is_err(), "one more goes in, then it waits again");
        let reader = tokio::spawn(all_of(rx));
        paced.room().await;
        drop(paced);
        assert_eq!(reader.await.unwrap(), vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_receiver_gone_ends_the_wait() {
        let (tx, rx) = mpsc::channel(1);
        let mut paced = Paced::new(tx);
        paced.push(1);
        paced.push(2);
        drop(rx);
        paced.room().await;
        paced.push(3);
        assert_eq!(paced.waiting(), 0);
    }
}
