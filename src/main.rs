//! The `switchboard` binary: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use switchboard::cli::{self, Cli};

/// mimalloc: the top fan-out rates and the HTTP rate were 12–67 % higher than with glibc's
/// malloc, and freed memory goes back to the system as the server carries on, where glibc kept
/// hundreds of megabytes after a burst of slow consumers (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: a configuration or usage problem is the operator's to fix (exit 2),
            // anything else failed while running (exit 1).
            eprintln!("switchboard: {err:#}");
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
