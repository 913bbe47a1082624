//! The `midpoint` command line: exact divergences, sampling, the built-in demo, estimates.

mod allocator;
mod cli;

use clap::Parser;

fn main() {
    allocator::keep_freed_memory();
    let parsed = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                e.exit();
            }
            // One line: clap's first line names the problem; usage follows on request.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see --help)");
            std::process::exit(2);
        }
    };
    if let Err(e) = cli::run(parsed) {
        let closed_pipe = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
        if closed_pipe {
            return;
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
