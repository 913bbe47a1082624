//! The `midpoint-train` command line: `info`, `toy`, `critic-check`, `panels`, `warmup`, `mgm`, `crops`,
//! `fid-ref`, `fid`, `bench`.

mod cli;

/// First line of a message (libtorch errors carry C++ backtraces on later lines).
fn one_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("unknown error")
}

fn main() {
    // Panics (e.g. a libtorch failure inside an infallible tch call) also end in one line.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("panic");
        // A closed stdout (`midpoint-train info --json | head`) ends the program quietly, as
        // for any Unix filter, not as an internal error.
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        eprintln!("error: internal: {}", one_line(msg));
    }));
    let parsed: cli::Cli = midpoint::command_line::parse_or_exit();
    if let Err(e) = cli::run(parsed) {
        eprintln!("error: {}", one_line(&format!("{e:#}")));
        std::process::exit(1);
    }
}
