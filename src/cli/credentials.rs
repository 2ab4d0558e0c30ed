//! Twitter's credentials, from the environment or an env file (`--env-file`) only: flags
//! would land in shell history and `ps`. The environment wins over the file, as with dotenv.
//! A missing one is a usage error that names it, and never shows any value.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::source::twitter::credentials::{BearerToken, Credentials};

const CONSUMER_KEY: &str = "TWITTER_CONSUMER_KEY";
const CONSUMER_SECRET: &str = "TWITTER_CONSUMER_SECRET";
const ACCESS_TOKEN: &str = "TWITTER_ACCESS_TOKEN";
const ACCESS_TOKEN_SECRET: &str = "TWITTER_ACCESS_TOKEN_SECRET";
const BEARER_TOKEN: &str = "TWITTER_BEARER_TOKEN";

/// Reads `TWITTER_BEARER_TOKEN`; the environment wins over the env file, as with dotenv.
pub(crate) fn bearer_token(env_file: Option<&Path>) -> Result<BearerToken> {
    let from_file = match env_file {
        Some(path) => parse_env_file(path)?.remove(BEARER_TOKEN),
        None => None,
    };
    let token = std::env::var(BEARER_TOKEN)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or(from_file.filter(|v| !v.trim().is_empty()))
        .ok_or_else(|| {
            Error::usage(format!(
                "missing Twitter credential {BEARER_TOKEN} (API v2 uses the app's bearer token): export it in the environment or put a {BEARER_TOKEN}=value line in a file given with --env-file"
            ))
        })?;
    let token = token.trim().to_string();
    // A token that cannot go into an HTTP header would only fail later, less clearly.
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::usage(format!(
            "{BEARER_TOKEN} holds characters a bearer token cannot have (spaces, control characters or non-ASCII); copy it again from the developer portal"
        )));
    }
    Ok(BearerToken::new(token))
}

/// Reads the four variables; the environment wins over the env file, as with dotenv.
/// A missing one is a usage error that names it (and never shows any value).
pub(crate) fn oauth(env_file: Option<&Path>) -> Result<Credentials> {
    let file = match env_file {
        Some(path) => parse_env_file(path)?,
        None => HashMap::new(),
    };
    let get = |name: &str| -> Option<String> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| file.get(name).cloned().filter(|v| !v.is_empty()))
    };
    let names = [
        CONSUMER_KEY,
        CONSUMER_SECRET,
        ACCESS_TOKEN,
        ACCESS_TOKEN_SECRET,
    ];
    let values: Vec<Option<String>> = names.iter().map(|n| get(n)).collect();
    let missing: Vec<&str> = names
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "missing Twitter credential{} {}: export {} in the environment or put {} in a file given with --env-file (or use --from-file to replay a file without Twitter)",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() > 1 { "them" } else { "it" },
            if missing.len() > 1 { "NAME=value lines" } else { "a NAME=value line" },
        )));
    }
    let mut it = values.into_iter().map(Option::unwrap);
    Ok(Credentials {
        consumer_key: it.next().unwrap(),
        consumer_secret: it.next().unwrap(),
        access_token: it.next().unwrap(),
        access_token_secret: it.next().unwrap(),
    })
}

/// Parses `KEY=VALUE` lines: blank lines and `#` comments skipped, an optional `export `
/// prefix, and matching single or double quotes around the value removed. This is the
/// subset systemd's EnvironmentFile and dotenv agree on.
fn parse_env_file(path: &Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read --env-file {}: {e}", path.display())))?;
    let mut vars = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::usage(format!(
                "--env-file {} line {}: expected NAME=value",
                path.display(),
                i + 1
            )));
        };
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')))
        {
            &value[1..value.len() - 1]
        } else {
            value
        };
        vars.insert(key.trim().to_string(), value.to_string());
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_forms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("creds.env");
        std::fs::write(&p, "# comment\n\nexport A=1\nB=\"two words\"\nC='x=y'\n").unwrap();
        let vars = parse_env_file(&p).unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x=y");
    }
}
