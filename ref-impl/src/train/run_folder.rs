//! A run's output folder, claimed by one run at a time and never clobbered by accident.
//!
//! Every trainer (`toy`, `warmup`, `mgm`) claims its `--out` before it writes anything:
//!
//! * **Lock.** `OUT/.lock` is locked with an exclusive advisory lock (`flock`, through
//!   [`std::fs::File::try_lock`]) for the life of the run. A second run on the same folder is
//!   refused at once with the first one's pid, host and start time, which the holder writes into
//!   the file. The kernel drops the lock when the holder's process ends in any way (`kill -9`
//!   included), so a dead run never leaves a stale lock behind.
//! * **A folder that holds a run** (any of [`RUN_MARKERS`]) is refused to a new run: it must be
//!   resumed (`--resume`, where the trainer has it) or replaced on purpose (`--overwrite`).
//!   `--overwrite` removes the previous run's outputs ([`RUN_OUTPUTS`], and the grids under
//!   `grids/`) before the new run starts, so no stale plot or log of the old run is left to be
//!   mistaken for the new one's; files the trainers do not write are left alone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Files whose presence means the folder holds a run.
pub const RUN_MARKERS: [&str; 4] = [
    "config.json",
    "checkpoint.safetensors",
    "losses.jsonl",
    "summary.json",
];

/// Every file a trainer writes at the top of its folder (removed by `--overwrite`).
pub const RUN_OUTPUTS: [&str; 18] = [
    "config.json",
    "summary.json",
    "metrics.json",
    "checkpoint.safetensors",
    "checkpoint.safetensors.tmp",
    "losses.jsonl",
    "losses.csv",
    "losses.png",
    "fid.jsonl",
    "fid.png",
    "energy_distance.jsonl",
    "energy_distance.png",
    "curve.csv",
    "samples.npy",
    "target.npy",
    "scatter.png",
    "samples.png",
    "metrics.txt",
];

const LOCK: &str = ".lock";

/// How a run means to use its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A new run: the folder must not hold one.
    New,
    /// A new run replacing the one the folder may hold (`--overwrite`).
    Overwrite,
    /// Continue the run the folder holds (`--resume`; the trainer checks its checkpoint).
    Resume,
}

impl Claim {
    /// The claim of a run's `--resume` and `--overwrite` flags (both at once is an error).
    pub fn of(resume: bool, overwrite: bool) -> Result<Self, RunFolderError> {
        match (resume, overwrite) {
            (true, true) => Err(RunFolderError::Conflict),
            (true, false) => Ok(Claim::Resume),
            (false, true) => Ok(Claim::Overwrite),
            (false, false) => Ok(Claim::New),
        }
    }
}

/// Why a run folder could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum RunFolderError {
    /// Another run holds the folder's lock.
    #[error(
        "{path} is in use by another run ({holder}): wait for it to end, or choose another --out"
    )]
    InUse {
        /// The folder.
        path: PathBuf,
        /// What the holder wrote into the lock file (pid, host, start time).
        holder: String,
    },
    /// The folder holds a run and the claim was [`Claim::New`].
    #[error("{path} already holds a run ({found}): pass --resume to continue it (mgm, warmup), --overwrite to replace it, or choose another --out")]
    HoldsRun {
        /// The folder.
        path: PathBuf,
        /// The run files found, comma-separated.
        found: String,
    },
    /// `--resume` and `--overwrite` together.
    #[error("--resume continues the run in --out and --overwrite replaces it: give one of them")]
    Conflict,
    /// The folder or its lock file could not be created, read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> RunFolderError {
    RunFolderError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A claimed run folder; the claim (the lock) lasts until this value is dropped.
#[derive(Debug)]
pub struct RunFolder {
    path: PathBuf,
    _lock: Option<File>,
}

impl RunFolder {
    /// Creates `path` if needed, takes its lock, and checks or clears it for `claim`.
    pub fn claim(path: &Path, claim: Claim) -> Result<Self, RunFolderError> {
        std::fs::create_dir_all(path).map_err(|e| io(path, e))?;
        let lock_path = path.join(LOCK);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The holder may be between creating and writing the file: say so.
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(RunFolderError::InUse {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() {
                        "a run that is just starting".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(&lock_path, e)),
        }
        let found: Vec<&str> = RUN_MARKERS
            .iter()
            .copied()
            .filter(|m| path.join(m).exists())
            .collect();
        match claim {
            Claim::New if !found.is_empty() => {
                return Err(RunFolderError::HoldsRun {
                    path: path.to_path_buf(),
                    found: found.join(", "),
                })
            }
            Claim::Overwrite => clear(path)?,
            _ => {}
        }
        let holder = format!(
            "pid {}, host {}, started {} (Unix time {})",
            std::process::id(),
            hostname(),
            humantime_utc(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        );
        lock.set_len(0).map_err(|e| io(&lock_path, e))?;
        lock.rewind().map_err(|e| io(&lock_path, e))?;
        lock.write_all(holder.as_bytes())
            .and_then(|_| lock.flush())
            .map_err(|e| io(&lock_path, e))?;
        Ok(RunFolder {
            path: path.to_path_buf(),
            _lock: Some(lock),
        })
    }

    /// The folder of a data-parallel run as seen by a rank other than 0, which writes
    /// nothing into it: no lock is taken and nothing is checked or cleared (rank 0 claims it).
    pub fn for_reader(path: &Path) -> Self {
        RunFolder {
            path: path.to_path_buf(),
            _lock: None,
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes the outputs of a previous run (module docs).
fn clear(path: &Path) -> Result<(), RunFolderError> {
    for name in RUN_OUTPUTS {
        let p = path.join(name);
        if p.is_file() {
            std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
        }
    }
    let grids = path.join("grids");
    if grids.is_dir() {
        for entry in std::fs::read_dir(&grids).map_err(|e| io(&grids, e))? {
            let p = entry.map_err(|e| io(&grids, e))?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ours = (name.starts_with("step_") || name.starts_with("raw_step_"))
                && name.ends_with(".png");
            if ours && p.is_file() {
                std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
            }
        }
        // Only when nothing else is in it.
        let _ = std::fs::remove_dir(&grids);
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `YYYY-MM-DD HH:MM:SS UTC` of now.
fn humantime_utc() -> String {
    civil_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC` of Unix time `secs` (civil-from-days: no time-zone database).
fn civil_utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_while_the_first_holds_and_allowed_after() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunFolder::claim(dir.path(), Claim::New).unwrap();
        match RunFolder::claim(dir.path(), Claim::New) {
            Err(RunFolderError::InUse { holder, .. }) => {
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                )
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        RunFolder::claim(dir.path(), Claim::New).unwrap();
    }

    #[test]
    fn a_folder_holding_a_run_needs_resume_or_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("losses.jsonl"), "{\"step\":0}\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        std::fs::create_dir(dir.path().join("grids")).unwrap();
        std::fs::write(dir.path().join("grids/step_0000000.png"), "png").unwrap();
        let err = RunFolder::claim(dir.path(), Claim::New).unwrap_err();
        assert!(
            matches!(&err, RunFolderError::HoldsRun { found, .. } if found == "losses.jsonl"),
            "{err}"
        );
        drop(RunFolder::claim(dir.path(), Claim::Resume).unwrap());
        assert!(dir.path().join("losses.jsonl").exists());
        drop(RunFolder::claim(dir.path(), Claim::Overwrite).unwrap());
        assert!(!dir.path().join("losses.jsonl").exists());
        assert!(!dir.path().join("grids").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
        RunFolder::claim(dir.path(), Claim::New).unwrap();
    }

    #[test]
    fn unix_times_become_civil_utc() {
        // Values from `date -u -d @SECS`.
        assert_eq!(civil_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(civil_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(civil_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(civil_utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }
}
