//! What ships with the single binary besides the commands themselves: `--version` with the git
//! commit (build.rs), shell completions and man pages generated from the clap definitions
//! (`tweetpipe completions SHELL`, `tweetpipe man [COMMAND…]`, both hidden from `--help`).
//! No broker needed. The static musl build itself is checked end to end by
//! `scripts/smoke-static` and `scripts/check-static` (run by .ci/run).

use std::process::{Command, Output};

fn tweetpipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tweetpipe"))
        .args(args)
        .output()
        .expect("run tweetpipe")
}

fn stdout_ok(args: &[&str]) -> String {
    let out = tweetpipe(args);
    assert!(
        out.status.success(),
        "tweetpipe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    let v = stdout_ok(&["--version"]);
    let want = format!("tweetpipe {} (", env!("CARGO_PKG_VERSION"));
    assert!(v.starts_with(&want), "{v:?}");
    let commit = v.trim_end().trim_start_matches(&want).trim_end_matches(')');
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "commit {commit:?} in {v:?}"
    );
    // Inside a git checkout it is HEAD's short hash (build.rs reruns when HEAD moves).
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        if out.status.success() && std::env::var_os("TWEETPIPE_GIT_COMMIT").is_none() {
            let head = String::from_utf8_lossy(&out.stdout);
            assert!(head.starts_with(commit), "{commit} is not HEAD ({head})");
        }
    }
    // Subcommands report the same version.
    assert!(stdout_ok(&["produce", "--version"]).contains(&format!("({commit})")));
}

#[test]
fn completions_for_every_shell_cover_produce_and_consume() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_ok(&["completions", shell]);
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        // fish spells long flags `-l from-file`, the others `--from-file`.
        for word in ["produce", "consume", "topic", "from-file", "idle-exit"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
}

#[test]
fn completions_reject_an_unknown_shell_as_a_usage_error() {
    let out = tweetpipe(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

#[test]
fn man_page_lists_the_commands_and_each_command_has_its_own() {
    let page = stdout_ok(&["man"]);
    assert!(
        page.contains(".TH tweetpipe 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    // roff escapes hyphens: `\-\-log\-format`.
    for word in ["produce", "consume", "topic", "SYNOPSIS", "log\\-format"] {
        assert!(page.contains(word), "man page lacks {word}");
    }
    let produce = stdout_ok(&["man", "produce"]);
    assert!(produce.contains(".TH tweetpipe-produce 1"));
    assert!(produce.contains("from\\-file"));
    assert!(produce.contains("TWITTER_CONSUMER_KEY"));
    let consume = stdout_ok(&["man", "consume"]);
    assert!(consume.contains(".TH tweetpipe-consume 1"));
    assert!(consume.contains("idle\\-exit"));
    assert!(consume.contains("session\\-timeout") && consume.contains("instance\\-id"));
    assert!(stdout_ok(&["man", "topic", "create"]).contains(".TH tweetpipe-topic-create 1"));
    assert!(stdout_ok(&["man", "group", "describe"]).contains(".TH tweetpipe-group-describe 1"));

    let out = tweetpipe(&["man", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("produce, consume, topic"), "{err}");
}

#[test]
fn the_generators_stay_out_of_the_help() {
    let help = stdout_ok(&["--help"]);
    assert!(help.contains("produce") && help.contains("consume"));
    assert!(!help.contains("completions"), "{help}");
    assert!(
        !help.lines().any(|l| l.trim_start().starts_with("man ")),
        "{help}"
    );
}
