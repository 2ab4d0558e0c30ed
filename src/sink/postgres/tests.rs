//! The parts of the PostgreSQL sink that need no server: the URL and the password sources,
//! the pgpass format, the binary rows, the TLS modes. tests/postgres.rs runs the sink on a
//! real server.

use super::copy::{self, Rows, Target as Acts};
use super::target::{pgpass_lookup, Env, Host, SslMode, Target};
use super::tls;
use crate::enrich::Enricher;
use crate::sink::{ConsumedRecord, Encoded, Encoder, Kind};

fn no_env() -> Env {
    Env { var: |_| None }
}

#[test]
fn the_url_gives_user_host_port_database_and_sslmode() {
    let t = Target::parse(
        "postgres://ana%40lab:s3cr%3At@db.internal:5433/research?sslmode=verify-full&connect_timeout=3",
        &no_env(),
    )
    .unwrap();
    assert_eq!(t.user, "ana@lab");
    assert_eq!(t.password.as_ref().unwrap().0, "s3cr:t");
    assert_eq!(t.password_from, "the URL");
    assert_eq!(t.host, Host::Tcp("db.internal".into()));
    assert_eq!(t.port, 5433);
    assert_eq!(t.dbname, "research");
    assert_eq!(t.sslmode, SslMode::VerifyFull);
    assert_eq!(t.connect_timeout, std::time::Duration::from_secs(3));
    // What logs and errors show: never the password.
    assert_eq!(t.shown(), "postgres://ana@lab@db.internal:5433/research");
    assert!(!format!("{t:?}").contains("s3cr"));

    let t = Target::parse("postgresql://u@[::1]/d", &no_env()).unwrap();
    assert_eq!((t.host.clone(), t.port), (Host::Tcp("::1".into()), 5432));
    assert_eq!(t.sslmode, SslMode::Prefer, "libpq's default");
    assert_eq!(t.shown(), "postgres://u@[::1]:5432/d");

    let t = Target::parse("postgres://u@/d?host=/run/postgresql", &no_env()).unwrap();
    assert_eq!(t.host, Host::Socket("/run/postgresql".into()));
    let t = Target::parse("postgres://u@%2Ftmp%2Fsock/d", &no_env()).unwrap();
    assert_eq!(t.host, Host::Socket("/tmp/sock".into()));
    // No database: the user's name, as libpq does.
    assert_eq!(
        Target::parse("postgres://u@h", &no_env()).unwrap().dbname,
        "u"
    );
}

#[test]
fn url_mistakes_name_the_part_and_never_the_password() {
    for (url, says) in [
        ("postgres://u:pw123@h/d?sslmode=sometimes", "sslmode"),
        ("postgres://u:pw123@h:99999/d", "port"),
        ("postgres://u:pw123@h/d?pool=3", "\"pool\""),
        ("postgres://u:pw123@h1,h2/d", "several hosts"),
        ("postgres://u:pw123@[::1/d", "IPv6"),
    ] {
        let e = Target::parse(url, &no_env()).unwrap_err();
        assert!(e.contains(says), "{url}: {e}");
        assert!(!e.contains("pw123"), "{url}: {e}");
    }
}

#[test]
fn the_password_comes_from_the_url_then_pgpassword_then_the_pgpass_file() {
    let env = Env {
        var: |k| match k {
            "PGPASSWORD" => Some("from-env".into()),
            _ => None,
        },
    };
    let t = Target::parse("postgres://u:from-url@h/d", &env).unwrap();
    assert_eq!(t.password.unwrap().0, "from-url");
    let t = Target::parse("postgres://u@h/d", &env).unwrap();
    assert_eq!(
        (t.password.unwrap().0.as_str(), t.password_from),
        ("from-env", "PGPASSWORD")
    );

    // The pgpass file: only when private (libpq ignores one others can read).
    let dir = std::env::temp_dir().join(format!("tweetpipe-pgpass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pgpass");
    std::fs::write(&file, "h:5432:d:u:from-file\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    static FILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FILE.get_or_init(|| file.to_string_lossy().into_owned());
    let env = Env {
        var: |k| match k {
            "PGPASSFILE" => FILE.get().cloned(),
            _ => None,
        },
    };
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = Target::parse("postgres://u@h/d", &env).unwrap();
    assert_eq!(
        (t.password.unwrap().0.as_str(), t.password_from),
        ("from-file", "the pgpass file")
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(Target::parse("postgres://u@h/d", &env)
        .unwrap()
        .password
        .is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pgpass_lines_match_with_wildcards_and_escapes_first_match_wins() {
    let text = "# comment\n\
                other:5432:*:u:nope\n\
                db\\:1:*:research:ana:pa\\:ss:word\n\
                *:*:*:ana:fallback\n";
    assert_eq!(
        pgpass_lookup(text, "db:1", 5432, "research", "ana").as_deref(),
        Some("pa:ss:word")
    );
    assert_eq!(
        pgpass_lookup(text, "db", 5432, "research", "ana").as_deref(),
        Some("fallback")
    );
    assert_eq!(
        pgpass_lookup(text, "other", 5432, "x", "u").as_deref(),
        Some("nope")
    );
    assert_eq!(pgpass_lookup(text, "other", 5433, "x", "u"), None);
}

#[test]
fn nul_escapes_become_replacement_characters_but_escaped_backslashes_stay() {
    assert_eq!(
        copy::without_nul_escapes(r#"{"a":"x\u0000y"}"#),
        r#"{"a":"x\ufffdy"}"#
    );
    assert_eq!(
        copy::without_nul_escapes(r#"{"a":"x\\u0000y"}"#),
        r#"{"a":"x\\u0000y"}"#
    );
    assert_eq!(
        copy::without_nul_escapes(r#"{"a":"\\\u0000"}"#),
        r#"{"a":"\\\ufffd"}"#
    );
    assert_eq!(copy::without_nul_escapes("plain"), "plain");
}

#[test]
fn control_messages_name_what_they_act_on() {
    let v: serde_json::Value = serde_json::from_str(
        r#"{"delete":{"status":{"id":1234,"id_str":"1234","user_id":9,"user_id_str":"9"}}}"#,
    )
    .unwrap();
    let t = Acts::of("delete", &v);
    assert_eq!(
        (t.tweet_id.as_deref(), t.user_id.as_deref()),
        (Some("1234"), Some("9"))
    );
    let v: serde_json::Value = serde_json::from_str(
        r#"{"did":"did:plc:a","kind":"commit","commit":{"operation":"delete","collection":"app.bsky.feed.post","rkey":"k"}}"#,
    )
    .unwrap();
    assert_eq!(
        Acts::of("delete", &v).tweet_id.as_deref(),
        Some("at://did:plc:a/app.bsky.feed.post/k"),
        "a Bluesky delete names the post's row id"
    );
    let v: serde_json::Value =
        serde_json::from_str(r#"{"scrub_geo":{"user_id":7,"up_to_status_id":99}}"#).unwrap();
    let t = Acts::of("scrub_geo", &v);
    assert_eq!(
        (t.user_id.as_deref(), t.up_to_id.as_deref()),
        (Some("7"), Some("99"))
    );
    assert_eq!(
        Acts::of("limit", &serde_json::json!({"limit":{"track":3}})),
        Acts::default()
    );
}

/// Reads the fields of one binary COPY tuple back; nothing may follow them.
fn fields(tuple: &[u8]) -> Vec<Option<&[u8]>> {
    let out = copy::tuple_fields(tuple);
    let end = 2 + out
        .iter()
        .map(|f| 4 + f.map_or(0, <[u8]>::len))
        .sum::<usize>();
    assert_eq!(end, tuple.len(), "the tuple has nothing after its fields");
    out
}

#[test]
fn a_tweet_is_one_tuple_of_the_tweets_columns() {
    let value = br#"{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id":5,"id_str":"5","text":"I love #rust\u0000 @bob","user":{"id_str":"9","screen_name":"ana"},"entities":{"hashtags":[{"text":"rust"}],"user_mentions":[{"screen_name":"bob"}],"urls":[]},"lang":"en"}"#;
    let outcome = Enricher::new().enrich(value);
    let mut out = Encoded::with_capacity(1, 1, 1024);
    let record = ConsumedRecord {
        partition: 1,
        offset: 77,
        value,
    };
    Rows.encode(&record, &outcome, &mut out);
    assert_eq!(out.entries[0].kind, Kind::Tweet);
    let f = fields(out.get(0));
    assert_eq!(f.len(), copy::TWEET_COLUMNS.split(',').count());
    assert_eq!(f[0], Some(&b"5"[..]));
    // created_at: microseconds since 2000-01-01.
    let micros = i64::from_be_bytes(f[1].unwrap().try_into().unwrap());
    assert_eq!(micros, (1_539_202_764 - 946_684_800) * 1_000_000);
    assert_eq!(f[3], Some(&b"ana"[..]));
    assert!(!f[4].unwrap().contains(&0), "no NUL in text");
    // hashtags: a one-dimensional text[] of one element.
    let a = f[11].unwrap();
    assert_eq!(&a[0..4], &1i32.to_be_bytes());
    assert_eq!(&a[12..16], &1i32.to_be_bytes());
    assert!(a.ends_with(b"rust"));
    // urls: empty, zero dimensions.
    assert_eq!(f[13].unwrap(), &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25]);
    assert_eq!(f[15], None, "not a retweet: no retweeted_id");
    assert_eq!(f[21], Some(&1i32.to_be_bytes()[..]));
    assert_eq!(f[22], Some(&77i64.to_be_bytes()[..]));
    assert_eq!(f[23], Some(&value[..]), "raw: the record as received");

    let bad = b"not json";
    let mut out = Encoded::with_capacity(1, 1, 1024);
    let record = ConsumedRecord {
        partition: 0,
        offset: 3,
        value: bad,
    };
    Rows.encode(&record, &Enricher::new().enrich(bad), &mut out);
    assert_eq!(out.entries[0].kind, Kind::Error);
    let f = fields(out.get(0));
    assert_eq!(f.len(), copy::ERROR_COLUMNS.split(',').count());
    assert_eq!(f[1], Some(&bad[..]));
}

#[test]
fn tls_modes_and_a_private_ca() {
    assert!(tls::client_config(SslMode::Disable, None)
        .unwrap()
        .is_none());
    assert!(tls::client_config(SslMode::Require, None)
        .unwrap()
        .is_some());
    assert!(tls::client_config(SslMode::VerifyFull, None)
        .unwrap()
        .is_some());
    let e = tls::client_config(
        SslMode::VerifyFull,
        Some(std::path::Path::new("/nonexistent/ca.pem")),
    )
    .unwrap_err();
    assert!(e.contains("--pg-ca-file"), "{e}");
}
