#!/usr/bin/env bash
# The side-by-side of docs/baselines.md: every flow-map method and MGM on one toy target,
# several seeds, two runs at a time (one libtorch thread each), then the tables and figures.
#
#   scripts/flow-map-study.sh DATA ROOT [SEEDS...]      (default seeds: 0 1 2)
#
# STEPS (default 10000) sets every flow-map run's steps; MGM runs its own defaults (10,000
# iterations of 5 critic and 1 generator updates). METHODS (default: all nine) picks the
# flow-map methods, MGM=0 leaves MGM out (to redo some runs of a study). Each run's output and log go under ROOT;
# a run that fails (a diverging loss is an error) is reported in the table, not retried.
set -euo pipefail
data=${1:?usage: flow-map-study.sh DATA ROOT [SEEDS...]}
root=${2:?usage: flow-map-study.sh DATA ROOT [SEEDS...]}
shift 2
seeds=${*:-0 1 2}
steps=${STEPS:-10000}
bin=${MIDPOINT_TRAIN:-target/release/midpoint-train}
methods=${METHODS:-fm lsd esd psd-m psd-u lmd emd fmm pfmm}
with_mgm=${MGM:-1}
mkdir -p "$root/logs"
for s in $seeds; do
  for m in $methods; do
    echo "$m $s flowmap --data $data --method $m --seed $s --steps $steps --quiet --overwrite --out $root/$m/seed$s"
  done
  [ "$with_mgm" = 0 ] || echo "mgm $s toy --data $data --seed $s --quiet --overwrite --out $root/mgm/seed$s"
done | xargs -P 2 -L 1 sh -c '
  name=$0; seed=$1; shift
  if "'"$bin"'" "$@" > "'"$root"'/logs/$name-seed$seed.log" 2>&1; then echo "done $name seed $seed"
  else echo "FAILED $name seed $seed: $(tail -1 "'"$root"'/logs/$name-seed$seed.log")"; fi'
cargo run --release -q -p midpoint-train --example flow_map_table -- "$root" "$data"
