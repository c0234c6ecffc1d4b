//! The `switchboard` binary: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use switchboard::cli::{self, Cli};

/// mimalloc: the top fan-out rates and the HTTP rate were 12–67 % higher than with glibc's
/// malloc, and freed memory goes back to the system as the server carries on, where glibc kept
/// hundreds of megabytes after a burst of slow consumers (BENCHMARKS.md). Built `no_thp`: it
/// does not ask for transparent huge pages, with which every 2 MiB of heap it touches is
/// resident whole, so a mostly idle connection's partly used buffers counted in full (idle
/// polling session 45-47 -> 26 KiB of RSS, no change in CPU per delivery or per request). A
/// host whose THP setting is `always` gives huge pages anyway.
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
