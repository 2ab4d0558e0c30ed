//! `tweetpipe rules list|add|delete|sync`: the v2 filtered stream's rules, and the rules
//! `produce --track` stands for. The requests are [`crate::source::twitter::rules`]'s; this is
//! the flags, the rules file, and what is printed.

use std::path::Path;

use serde::Deserialize;

use super::{output, RulesArgs, RulesCommand, V2_STREAM_URL};
use crate::error::{Error, Result};
use crate::source::twitter::rules::{describe, Changed, RulesApi, WantedRule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<WantedRule>,
}

/// Reads a rules file (TOML, one `[[rule]]` table per rule).
fn read_file(path: &Path) -> Result<Vec<WantedRule>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read --file {}: {e}", path.display())))?;
    let file: RulesFile = toml::from_str(&text).map_err(|e| {
        Error::usage(format!(
            "--file {} is not a rules file: {e}\nwrite one [[rule]] table per rule, with `value` and optionally `tag`",
            path.display()
        ))
    })?;
    check_wanted(&file.rule, &format!("--file {}", path.display()))?;
    Ok(file.rule)
}

/// One rule per `--track` term: value and tag are the term.
pub(crate) fn track_rules(track: &str) -> Result<Vec<WantedRule>> {
    let rules: Vec<WantedRule> = track
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| WantedRule {
            value: t.to_string(),
            tag: Some(t.to_string()),
        })
        .collect();
    check_wanted(&rules, "--track")?;
    Ok(rules)
}

fn check_wanted(rules: &[WantedRule], source: &str) -> Result<()> {
    for (i, r) in rules.iter().enumerate() {
        if r.value.trim().is_empty() {
            return Err(Error::usage(format!(
                "{source}: rule {} has an empty value",
                i + 1
            )));
        }
        if rules[..i].iter().any(|o| o.value == r.value) {
            return Err(Error::usage(format!(
                "{source}: the rule {:?} appears twice; Twitter keeps one rule per value",
                r.value
            )));
        }
    }
    Ok(())
}

/// `tweetpipe rules …`: prints to stdout what the server holds or did.
pub(crate) async fn run(cmd: RulesCommand) -> Result<()> {
    let api_args = match &cmd {
        RulesCommand::List(a) => a,
        RulesCommand::Add { api, .. }
        | RulesCommand::Delete { api, .. }
        | RulesCommand::Sync { api, .. } => api,
    };
    let RulesArgs {
        stream_url,
        env_file,
    } = api_args.clone();
    // Configuration errors first (exit 2), before any request.
    let wanted = match &cmd {
        RulesCommand::Sync { file, .. } => Some(read_file(file)?),
        RulesCommand::Add { value, tag, .. } => {
            let w = vec![WantedRule {
                value: value.clone(),
                tag: tag.clone(),
            }];
            check_wanted(&w, "rules add")?;
            Some(w)
        }
        _ => None,
    };
    let token = super::credentials::bearer_token(env_file.as_deref())?;
    let uri = super::produce::stream_url(&stream_url, V2_STREAM_URL)?;
    let api = RulesApi::new(&uri, token);
    match cmd {
        RulesCommand::List(_) => {
            let rules = api.list().await?;
            let mut out = String::new();
            for r in &rules {
                out.push_str(&describe(&r.id, &r.value, r.tag.as_deref()));
                out.push('\n');
            }
            out.push_str(&format!("{} rule(s)\n", rules.len()));
            output::print(out)
        }
        RulesCommand::Add { dry_run, .. } => {
            let c = api.add(&wanted.unwrap_or_default(), dry_run).await?;
            finish(c, dry_run)
        }
        RulesCommand::Delete { rules, dry_run, .. } => {
            let (ids, values): (Vec<String>, Vec<String>) = rules
                .into_iter()
                .partition(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
            let c = api.delete(&ids, &values, dry_run).await?;
            finish(c, dry_run)
        }
        RulesCommand::Sync { dry_run, .. } => {
            let report = api.sync(&wanted.unwrap_or_default(), dry_run).await?;
            let mut out = report.join("\n") + "\n";
            if dry_run {
                out.push_str("dry run: nothing was changed\n");
            }
            output::print(out)
        }
    }
}

fn finish(c: Changed, dry_run: bool) -> Result<()> {
    let mut out = format!("{}{}\n", if dry_run { "dry run: " } else { "" }, c.summary);
    for e in &c.errors {
        out.push_str(e);
        out.push('\n');
    }
    output::print(out)?;
    if c.rejected > 0 {
        return Err(Error::usage(format!(
            "Twitter rejected {} rule change(s) (see above); fix the rule and run again",
            c.rejected
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_file_and_track_terms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rules.toml");
        std::fs::write(
            &p,
            "[[rule]]\nvalue = \"cat has:images\"\ntag = \"cats\"\n\n[[rule]]\nvalue = \"dog\"\n",
        )
        .unwrap();
        let rules = read_file(&p).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].tag.as_deref(), Some("cats"));
        assert_eq!(rules[1].tag, None);
        std::fs::write(&p, "[[rule]]\nvalu = \"typo\"\n").unwrap();
        assert!(read_file(&p)
            .unwrap_err()
            .to_string()
            .contains("rules.toml"));
        assert_eq!(track_rules("a, b,,c").unwrap().len(), 3);
        assert!(track_rules("a,a").is_err());
    }
}
