//! One shutdown signal the whole process listens to: SIGINT/SIGTERM, or `--max-records`
//! reached. Readers stop reading; the producer drains what was accepted.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been triggered.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Triggers on the first SIGINT or SIGTERM; a second one exits at once (code 1), for the
    /// operator who really does not want to wait for the drain.
    pub fn listen_for_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!(
                    "cannot install signal handlers; SIGINT/SIGTERM will kill without draining"
                );
                return;
            };
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            tracing::info!("signal received: no longer reading; draining what was accepted (a second signal aborts)");
            this.trigger();
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            eprintln!("tweetpipe: second signal, aborting without waiting for acknowledgements");
            std::process::exit(1);
        });
    }
}
