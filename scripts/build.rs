//! Build script: records which commit the binary was built from, for `tweetpipe --version`.
//!
//! Sets `TWEETPIPE_GIT_COMMIT` to `git rev-parse --short HEAD`, or to "unknown" outside a git
//! checkout (a source tarball, `cargo install` from a registry). A packager can set
//! `TWEETPIPE_GIT_COMMIT` in the build environment to override it. Cargo reruns this script
//! when HEAD moves (checkout, commit), so the printed commit stays fresh without rebuilding on
//! every source change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=TWEETPIPE_GIT_COMMIT");
    println!("cargo:rerun-if-changed=scripts/build.rs");

    // Watch what moves when HEAD changes: HEAD itself, the branch's ref file and packed-refs
    // (where `git gc` or a fresh clone keeps refs). `--git-dir` also finds worktrees and
    // submodules, where `.git` is a file.
    // Only paths that exist are watched: Cargo treats a missing one as always changed, which
    // would rebuild the crate on every `cargo build`.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) {
        watch(&git_dir.join("HEAD"));
        if let Some(common) = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from) {
            watch(&common.join("packed-refs"));
            if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
                let loose = common.join(head_ref);
                if loose.exists() {
                    watch(&loose);
                } else if let Some(dir) = loose.parent() {
                    // The branch lives in packed-refs for now; its first commit writes a loose
                    // ref file here.
                    watch(dir);
                }
            }
        }
    }

    let commit = std::env::var("TWEETPIPE_GIT_COMMIT")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TWEETPIPE_GIT_COMMIT={commit}");
}
