//! The roots of trust our TLS clients start from when no CA file is given (Kafka, Jetstream,
//! PostgreSQL), chosen the same way in one place.

use rustls::RootCertStore;

/// The system's CA store; when it holds none (a minimal VM or container), the Mozilla roots
/// compiled in. The flag says whether the system's were found.
pub(crate) fn default_roots() -> (RootCertStore, bool) {
    let mut roots = RootCertStore::empty();
    // Errors for single unreadable files are normal (a broken symlink in /etc/ssl/certs);
    // what counts is whether any root was found.
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    (roots, added > 0)
}
