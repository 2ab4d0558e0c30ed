//! The `tweetpipe` binary: parse the command line, run, turn the outcome into an exit code.
//! Everything else lives in the library.

use clap::Parser;

fn main() {
    let cli = tweetpipe::cli::Cli::parse();
    let code = match tweetpipe::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            // The logger may not be up yet (configuration errors), so print directly.
            eprintln!("tweetpipe: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
