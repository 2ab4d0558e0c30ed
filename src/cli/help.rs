//! Documentation generated from the clap definitions: shell completions and man pages.

use super::output;
use crate::error::{Error, Result};

/// `tweetpipe completions SHELL`: the completion script, generated from the definitions above.
pub(crate) fn print_completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = <super::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tweetpipe", &mut out);
    output::print(&out)
}

/// `tweetpipe man [COMMAND…]`: the man page of the program or of one of its commands.
pub(crate) fn print_man(path: &[String]) -> Result<()> {
    let mut cmd = <super::Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    // Building fills in the names the pages use (`tweetpipe-produce`, `tweetpipe produce`).
    cmd.build();
    for name in path {
        let known: Vec<String> = cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_string())
            .collect();
        cmd = cmd
            .find_subcommand(name)
            .filter(|c| !c.is_hide_set())
            .cloned()
            .ok_or_else(|| {
                Error::usage(format!(
                    "no man page for `{}`; pages: {}",
                    path.join(" "),
                    if known.is_empty() {
                        "none below this command".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
    }
    let mut out = Vec::new();
    let source = format!("tweetpipe {}", cmd.get_version().unwrap_or_default());
    clap_mangen::Man::new(cmd)
        .source(source)
        .render(&mut out)
        .map_err(|e| Error::runtime(format!("cannot render the man page: {e}")))?;
    output::print(&out)
}
