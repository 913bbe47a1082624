//! The `midpoint` command line: exact divergences, sampling, the built-in demo, estimates.

mod allocator;
mod cli;

fn main() {
    allocator::keep_freed_memory();
    let parsed: cli::Cli = midpoint::command_line::parse_or_exit();
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
