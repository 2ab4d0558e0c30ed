//! `--metrics-addr` (env `TWEETPIPE_METRICS_ADDR`): where the metrics endpoint listens.
//! `HOST:PORT`, or a port alone for `127.0.0.1:PORT`: the endpoint shows what the stream
//! carries, so it is local unless the user names a wider address.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

use crate::error::{Error, Result};

/// Parses `--metrics-addr`; `None` when not given (no endpoint). Host names are resolved
/// once, here (the first address wins).
pub(crate) fn addr(given: Option<&str>) -> Result<Option<SocketAddr>> {
    given.map(parse).transpose()
}

fn parse(given: &str) -> Result<SocketAddr> {
    let err = |why: &str| {
        Error::usage(format!(
            "--metrics-addr {given:?}: {why}; give HOST:PORT (such as 127.0.0.1:9464 or [::1]:9464) or a port alone (listens on 127.0.0.1)"
        ))
    };
    let s = given.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = port_only
            .parse()
            .map_err(|_| err("the port must be 0 to 65535"))?;
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(err("no port"));
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return Err(err("an IPv6 address goes in brackets, as [::1]:9464"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| err("the port must be a number from 0 to 65535"))?;
    (host, port)
        .to_socket_addrs()
        .map_err(|e| err(&format!("cannot resolve {host:?}: {e}")))?
        .next()
        .ok_or_else(|| err(&format!("{host:?} has no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_is_local_and_hosts_are_kept() {
        assert_eq!(parse("9464").unwrap(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(parse(":9464").unwrap(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(parse("0.0.0.0:80").unwrap(), "0.0.0.0:80".parse().unwrap());
        assert_eq!(parse("[::1]:9464").unwrap(), "[::1]:9464".parse().unwrap());
        assert_eq!(parse("localhost:9").unwrap().port(), 9);
        assert!(parse("localhost:9").unwrap().ip().is_loopback());
        assert_eq!(addr(None).unwrap(), None);
    }

    #[test]
    fn bad_addresses_name_the_input_and_the_fix() {
        for bad in ["", "70000", "host", "::1:80", "127.0.0.1:x", ":"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let text = e.to_string();
            assert!(
                text.contains("--metrics-addr") && text.contains("HOST:PORT"),
                "{text}"
            );
        }
    }
}
