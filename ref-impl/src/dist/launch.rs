//! Who this process is in a multi-process job, from the launcher's environment.
//!
//! * **torchrun** (`torchrun --nproc-per-node N --no-python midpoint-train ...`): `RANK`,
//!   `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`, and
//!   `TORCHELASTIC_USE_AGENT_STORE=True` when torchrun's agent already serves the TCPStore at
//!   that address (then every rank connects as a client, as `torch.distributed` does), and
//!   `TORCHELASTIC_RESTART_COUNT` (the store's keys are prefixed per restart).
//! * **Slurm** (`srun --ntasks-per-node N midpoint-train ...`): `SLURM_PROCID`,
//!   `SLURM_STEP_NUM_TASKS` (srun's; else `SLURM_NTASKS`), `SLURM_LOCALID`, with `MASTER_ADDR` (the first node's address; Slurm has no variable for
//!   it, the job script exports it) and `MASTER_PORT` (default 29500).
//!
//! Without `RANK`/`WORLD_SIZE` and without `SLURM_PROCID` the process runs alone, exactly as
//! before. A partial or malformed set is an error, never a silent single-process run.

use super::DistError;

/// Default TCPStore port (torch's).
pub const DEFAULT_PORT: u16 = 29500;

/// This process's place in the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Global rank, `0..world`.
    pub rank: usize,
    /// Processes in the job.
    pub world: usize,
    /// Rank on this node (the CUDA device index).
    pub local_rank: usize,
    /// Address of the TCPStore.
    pub master_addr: String,
    /// Its port.
    pub master_port: u16,
    /// Whether torchrun's agent serves the store (every rank is a client).
    pub agent_store: bool,
    /// torchrun's restart count (prefix of the store's keys).
    pub restart: u32,
    /// `torchrun` or `slurm`.
    pub launcher: &'static str,
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, DistError> {
    value
        .trim()
        .parse()
        .map_err(|_| DistError::Launch(format!("{name}={value:?} is not a valid number")))
}

impl Launch {
    /// Reads the process environment ([`Launch::from_vars`]).
    pub fn from_env() -> Result<Option<Launch>, DistError> {
        Launch::from_vars(|k| std::env::var(k).ok())
    }

    /// Reads the launcher's variables through `var`: `Ok(None)` for a single process.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>, DistError> {
        let need = |k: &str| {
            var(k).ok_or_else(|| {
                DistError::Launch(format!(
                    "{k} is not set, but other launcher variables are (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; under Slurm export MASTER_ADDR)"
                ))
            })
        };
        let (rank, world, local_rank, launcher) =
            if var("RANK").is_some() || var("WORLD_SIZE").is_some() {
                let rank: usize = parse("RANK", &need("RANK")?)?;
                let world: usize = parse("WORLD_SIZE", &need("WORLD_SIZE")?)?;
                let local = match var("LOCAL_RANK") {
                    Some(v) => parse("LOCAL_RANK", &v)?,
                    None => rank,
                };
                (rank, world, local, "torchrun")
            } else if var("SLURM_PROCID").is_some() {
                let rank: usize = parse("SLURM_PROCID", &need("SLURM_PROCID")?)?;
                // srun sets the step's task count; SLURM_NTASKS (the job's) is the fallback.
                let world: usize = match var("SLURM_STEP_NUM_TASKS") {
                    Some(v) => parse("SLURM_STEP_NUM_TASKS", &v)?,
                    None => parse("SLURM_NTASKS", &need("SLURM_NTASKS")?)?,
                };
                let local = match var("SLURM_LOCALID") {
                    Some(v) => parse("SLURM_LOCALID", &v)?,
                    None => rank,
                };
                (rank, world, local, "slurm")
            } else {
                return Ok(None);
            };
        if world == 0 || rank >= world {
            return Err(DistError::Launch(format!(
                "rank {rank} is not in 0..{world} (world size {world})"
            )));
        }
        let master_addr = need("MASTER_ADDR")?;
        let master_port = match var("MASTER_PORT") {
            Some(v) => parse("MASTER_PORT", &v)?,
            None if launcher == "slurm" => DEFAULT_PORT,
            None => {
                return Err(DistError::Launch(
                    need("MASTER_PORT").unwrap_err().to_string(),
                ))
            }
        };
        let restart = match var("TORCHELASTIC_RESTART_COUNT") {
            Some(v) => parse("TORCHELASTIC_RESTART_COUNT", &v)?,
            None => 0,
        };
        Ok(Some(Launch {
            rank,
            world,
            local_rank,
            master_addr,
            master_port,
            agent_store: var("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"),
            restart,
            launcher,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Option<Launch>, DistError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Launch::from_vars(|k| m.get(k).cloned())
    }

    /// No launcher variables: one process, as before.
    #[test]
    fn no_variables_is_a_single_process() {
        assert_eq!(from(&[("PATH", "/bin")]).unwrap(), None);
    }

    /// What torchrun sets (agent store, restart count) and what srun sets are read.
    #[test]
    fn torchrun_and_slurm_are_read() {
        let l = from(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.2"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                l.rank,
                l.world,
                l.local_rank,
                l.master_port,
                l.agent_store,
                l.restart,
                l.launcher
            ),
            (3, 8, 1, 29400, true, 2, "torchrun")
        );
        let s = from(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "16"),
            ("SLURM_LOCALID", "1"),
            ("MASTER_ADDR", "node01"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                s.rank,
                s.world,
                s.local_rank,
                s.master_port,
                s.agent_store,
                s.launcher
            ),
            (5, 16, 1, DEFAULT_PORT, false, "slurm")
        );
    }

    /// A partial or malformed set is an error naming the variable.
    #[test]
    fn partial_or_malformed_sets_are_refused() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("RANK", "0")], "WORLD_SIZE"),
            (&[("RANK", "0"), ("WORLD_SIZE", "2")], "MASTER_ADDR"),
            (
                &[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")],
                "MASTER_PORT",
            ),
            (
                &[
                    ("RANK", "2"),
                    ("WORLD_SIZE", "2"),
                    ("MASTER_ADDR", "h"),
                    ("MASTER_PORT", "1"),
                ],
                "rank 2",
            ),
            (&[("RANK", "x"), ("WORLD_SIZE", "2")], "RANK=\"x\""),
        ];
        for (vars, want) in cases {
            let e = from(vars).unwrap_err().to_string();
            assert!(e.contains(want), "{vars:?}: {e}");
        }
    }
}
