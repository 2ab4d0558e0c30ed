//! The database `--output postgres://…` names: host, port, database, user, `sslmode`, and
//! the password, which comes from the URL, else `PGPASSWORD`, else a pgpass file
//! (`PGPASSFILE`, default `~/.pgpass`), in libpq's order, so that what works for `psql`
//! works here. The password is kept out of everything printable: [`Target::shown`] is the
//! URL without it, and [`Password`]'s `Debug` hides it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;

/// Whether `--output` names a database rather than a directory.
pub(crate) fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

#[derive(Clone)]
pub(crate) struct Password(pub(crate) String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(hidden)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Tcp(String),
    /// A directory holding the server's Unix socket (`host=/run/postgresql`).
    Socket(PathBuf),
}

/// libpq's `sslmode`, less `allow` (plain first, TLS if refused: no use for it here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS, unverified (verified against --pg-ca-file when one is given, as libpq does).
    Require,
    /// TLS, the certificate chain verified, not the host name.
    VerifyCa,
    /// TLS, chain and host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other:?} is not supported; give disable, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) user: String,
    pub(crate) password: Option<Password>,
    /// Where the password came from, for the advice when the server refuses it.
    pub(crate) password_from: &'static str,
    pub(crate) host: Host,
    pub(crate) port: u16,
    pub(crate) dbname: String,
    pub(crate) sslmode: SslMode,
    pub(crate) connect_timeout: Duration,
}

/// What the process environment supplies (passed in, so tests need not change it).
pub(crate) struct Env {
    pub(crate) var: fn(&str) -> Option<String>,
}

impl Env {
    pub(crate) fn process() -> Self {
        Env {
            var: |k| std::env::var(k).ok().filter(|v| !v.is_empty()),
        }
    }
}

impl Target {
    /// Parses a `postgres://` URL; the error names the part that is wrong (never the
    /// password).
    pub(crate) fn parse(url: &str, env: &Env) -> Result<Target, String> {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or("the URL must start with postgres:// or postgresql://")?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (mut user, mut password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (decode(u, "user")?, Some(decode(p, "password")?)),
                None => (decode(u, "user")?, None),
            },
            None => (String::new(), None),
        };
        let (host, port) = split_host_port(hostport)?;
        let mut host = decode(host, "host")?;
        let mut port = match port {
            Some(p) => parse_port(p)?,
            None => 5432,
        };
        let mut dbname = decode(path, "database name")?;
        let mut sslmode = SslMode::Prefer;
        let mut connect_timeout = Duration::from_secs(10);
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v, k)?;
            match k {
                "sslmode" => sslmode = SslMode::parse(&v)?,
                "host" => host = v,
                "port" => port = parse_port(&v)?,
                "user" => user = v,
                "password" => password = Some(v),
                "dbname" => dbname = v,
                "connect_timeout" => {
                    let secs: u64 = v.parse().map_err(|_| {
                        format!("connect_timeout={v:?}: give whole seconds, e.g. connect_timeout=10")
                    })?;
                    connect_timeout = Duration::from_secs(secs.max(1));
                }
                other => {
                    return Err(format!(
                        "URL parameter {other:?} is not supported; tweetpipe takes sslmode, host, port, user, password, dbname and connect_timeout"
                    ))
                }
            }
        }
        if user.is_empty() {
            user = (env.var)("PGUSER")
                .or_else(|| (env.var)("USER"))
                .ok_or("no user: give one in the URL, postgres://USER@HOST/DATABASE")?;
        }
        if dbname.is_empty() {
            dbname = user.clone();
        }
        let host = if host.is_empty() {
            Host::Tcp("localhost".into())
        } else if host.starts_with('/') {
            Host::Socket(PathBuf::from(host))
        } else {
            Host::Tcp(host)
        };
        let mut target = Target {
            user,
            password: None,
            password_from: "none given",
            host,
            port,
            dbname,
            sslmode,
            connect_timeout,
        };
        if let Some(p) = password {
            target.password = Some(Password(p));
            target.password_from = "the URL";
        } else if let Some(p) = (env.var)("PGPASSWORD") {
            target.password = Some(Password(p));
            target.password_from = "PGPASSWORD";
        } else if let Some(file) = pgpass_file(env) {
            if let Some(p) = read_pgpass(&file, &target) {
                target.password = Some(Password(p));
                target.password_from = "the pgpass file";
            }
        }
        Ok(target)
    }

    /// The URL without the password, for logs and errors.
    pub(crate) fn shown(&self) -> String {
        let host = match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
            Host::Tcp(h) => h.clone(),
            Host::Socket(p) => p.display().to_string(),
        };
        format!(
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )
    }

    /// The host as a pgpass file names it (a socket directory is `localhost`, as for libpq).
    fn pgpass_host(&self) -> &str {
        match &self.host {
            Host::Tcp(h) => h,
            Host::Socket(_) => "localhost",
        }
    }
}

fn decode(s: &str, what: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("the URL's {what} is not UTF-8 once percent-decoded"))
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 host needs its closing ']'")?;
        return Ok((host, after.strip_prefix(':')));
    }
    if s.contains(',') {
        return Err("several hosts are not supported; give one host".into());
    }
    Ok(match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("port {p:?} is not a port number (1-65535)"))
}

fn pgpass_file(env: &Env) -> Option<PathBuf> {
    if let Some(f) = (env.var)("PGPASSFILE") {
        return Some(PathBuf::from(f));
    }
    (env.var)("HOME").map(|h| Path::new(&h).join(".pgpass"))
}

/// The password of the first line of `file` that matches, as libpq reads it: a file others
/// may read is ignored (with a warning), as libpq does.
fn read_pgpass(file: &Path, target: &Target) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(file = %file.display(), "the password file can be read by others; ignored (chmod 600 it)");
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    pgpass_lookup(
        &text,
        target.pgpass_host(),
        target.port,
        &target.dbname,
        &target.user,
    )
}

/// The password of the first matching line of a pgpass file's text:
/// `hostname:port:database:username:password`, `*` matching anything, `\:` and `\\` escaped.
pub(crate) fn pgpass_lookup(
    text: &str,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass_line(line);
        let [h, p, d, u, pw] = fields.as_slice() else {
            continue;
        };
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        if matches(h, host) && matches(p, &port) && matches(d, dbname) && matches(u, user) {
            return Some(pw.clone());
        }
    }
    None
}

fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // The password is the rest of the line, colons and all, escapes still honoured.
            ':' if fields.len() < 5 => fields.push(String::new()),
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().unwrap().push(next);
                }
            }
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}
