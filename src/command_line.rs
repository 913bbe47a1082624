//! Conventions shared by the project's two command lines, `midpoint` and `midpoint-train`:
//! an argument error is one line on stderr and exit status 2, and a pair of law files is
//! given as `--p0 P0.json --p1 P1.json`.

use crate::io::{read_law, FormatError};
use crate::law::Law;
use std::path::PathBuf;

/// Parses the process's arguments into `C`. `--help` and `--version` print and exit 0; an
/// argument error prints one line ([`one_line_error`]) and exits with status 2.
pub fn parse_or_exit<C: clap::Parser>() -> C {
    match C::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                e.exit();
            }
            eprintln!("{} (see --help)", one_line_error(&e.to_string()));
            std::process::exit(2);
        }
    }
}

/// clap's message folded into one line: its first paragraph (the problem, and the list of
/// missing arguments where there is one), without the usage and tips that follow.
pub fn one_line_error(text: &str) -> String {
    let words: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    if words.is_empty() {
        "invalid arguments".into()
    } else {
        words.join(" ")
    }
}

/// Two endpoint laws given as JSON files (`{"kind":"gaussian",...}` or
/// `{"kind":"discrete",...}`; see [`crate::io`]).
#[derive(Debug, Clone, clap::Args)]
pub struct LawPair {
    /// Law of X0 (JSON).
    #[arg(long)]
    pub p0: PathBuf,
    /// Law of X1 (JSON).
    #[arg(long)]
    pub p1: PathBuf,
}

impl LawPair {
    /// Reads both laws; an unreadable or invalid file is an error naming it.
    pub fn read(&self) -> Result<(Law, Law), FormatError> {
        Ok((read_law(&self.p0)?, read_law(&self.p1)?))
    }
}

#[cfg(test)]
mod tests {
    use super::one_line_error;

    #[test]
    fn clap_messages_fold_into_their_first_paragraph() {
        let missing = "error: the following required arguments were not provided:\n  --out <OUT>\n  --data <DATA>\n\nUsage: midpoint-train mgm --out <OUT>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line_error(missing),
            "error: the following required arguments were not provided: --out <OUT> --data <DATA>"
        );
        let unexpected = "error: unexpected argument '--foo' found\n\n  tip: to pass '--foo' as a value, use '-- --foo'\n\nUsage: midpoint exact [OPTIONS]\n";
        assert_eq!(
            one_line_error(unexpected),
            "error: unexpected argument '--foo' found"
        );
        assert_eq!(one_line_error("\n\n"), "invalid arguments");
    }
}
