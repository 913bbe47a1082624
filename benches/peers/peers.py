"""Peer comparison for `midpoint estimate`: wall time, peak memory and power of the energy
distance test of `dcor` and the MMD test of `hyppo` beside our sign-flip test.

Run through `benches/peers/run.sh` (which creates the virtual environment). Sub-commands:

  timing  --ns 1000,2000,5000 --ours-ns 1000,...,1000000 --resamples 200 --out DIR
  power   --ns 200,500,1000,2000,5000 --reps 100 --budget 120 --out DIR
  one TOOL N RESAMPLES SEED   (internal: one timed test in a fresh process)

Each timed test runs in its own process; wall time is measured around it and the peak
resident memory is the child's ru_maxrss (Linux: KiB). Children get an address-space limit
(--mem-limit-gb, default 16) so a peer that would need more fails cleanly instead of
pushing the shared machine out of memory.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OURS = os.environ.get("MIDPOINT_BIN", os.path.join(ROOT, "target", "release", "midpoint"))
D = 10


def timing_data(n, seed):
    """d = 10, N(0, I) against N(0.1·1, I): the timing does not depend on the law."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)), 0.1 + rng.standard_normal((n, D))


def scenario(name, n, rng):
    """The power scenarios; `examples/report` (`report -- power`) draws the same laws."""
    if name == "mean-shift":
        return rng.standard_normal((n, 10)), 0.1 + rng.standard_normal((n, 10))
    if name == "scale-shift":
        return rng.standard_normal((n, 10)), 1.1 * rng.standard_normal((n, 10))
    # blobs: 3x3 grid spaced 10; p1's components have covariance eigenvalues (4, 1) at 45°.
    c0 = 10.0 * rng.integers(0, 3, size=(n, 2))
    c1 = 10.0 * rng.integers(0, 3, size=(n, 2))
    x = c0 + rng.standard_normal((n, 2))
    e = rng.standard_normal((n, 2)) * np.array([2.0, 1.0])
    h = np.sqrt(0.5)
    rot = np.stack([h * (e[:, 0] - e[:, 1]), h * (e[:, 0] + e[:, 1])], axis=1)
    return x, c1 + rot


def peer_test(tool, x, y, resamples, seed, fast=False):
    """p-value of one peer test."""
    if tool == "dcor":
        import dcor

        return dcor.homogeneity.energy_test(
            x, y, num_resamples=resamples, random_state=seed
        ).pvalue
    if tool == "hyppo":
        from hyppo.ksample import MMD

        np.random.seed(seed)
        # auto=False: a permutation test with `resamples` permutations (same work as ours);
        # the power runs use auto=True, hyppo's fast chi-square approximation.
        return MMD().test(x, y, reps=resamples, workers=1, auto=fast)[1]
    raise ValueError(tool)


def one(tool, n, resamples, seed):
    x, y = timing_data(n, seed)
    t = time.perf_counter()
    p = peer_test(tool, x, y, resamples, seed)
    print(json.dumps({"tool": tool, "n": n, "p_value": float(p), "inner_s": time.perf_counter() - t}))


def limit(gb):
    def f():
        resource.setrlimit(resource.RLIMIT_AS, (int(gb * 2**30), int(gb * 2**30)))
    return f


def timed(cmd, mem_gb, timeout):
    """Runs cmd in a fresh process; returns (ok, wall_s, peak_rss_mb, stdout or error)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit(mem_gb))
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - t, float("nan"), f"timeout after {timeout} s"
    wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all waited-for children: only meaningful when it
    # grew; /usr/bin/time -v (where the command runs under it) reports this child's own peak.
    peak = rss / 1024 if rss > before else float("nan")
    for line in r.stderr.splitlines():
        if "Maximum resident set size (kbytes)" in line:
            peak = int(line.rsplit(":", 1)[1]) / 1024
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
        return False, wall, peak, last[:160]
    return True, wall, peak, r.stdout.strip()


def cmd_timing(a):
    os.makedirs(a.out, exist_ok=True)
    rows = []
    tmp = tempfile.mkdtemp(prefix="midpoint-peers-")
    # Ours first (largest n last), each in a fresh process reading .npy files.
    for n in a.ours_ns:
        x, y = timing_data(n, 0)
        fx, fy = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
        np.save(fx, x)
        np.save(fy, y)
        del x, y
        cmd = ["/usr/bin/time", "-v", OURS, "estimate", "--x0", fx, "--x1", fy, "--permutations",
               str(a.resamples), "--quiet", "--json", "--seed", "1"]
        if n == a.ours_ns[0]:
            # Untimed warm-up: on the 2-vCPU build guest the first heavy process after an idle
            # spell runs ~1.5x slower (docs/performance.md); the peers run after ours, warm.
            timed(cmd, a.mem_limit_gb, a.timeout)
        # Median wall time of `--ours-repeats` runs (each a fresh process), largest peak.
        runs = [timed(cmd, a.mem_limit_gb, a.timeout) for _ in range(a.ours_repeats)]
        ok = all(r[0] for r in runs)
        wall = sorted(r[1] for r in runs)[len(runs) // 2]
        peak = max((r[2] for r in runs if r[2] == r[2]), default=float("nan"))
        out = runs[0][3]
        p = json.loads(out)["p_value"] if ok else None
        rows.append(("midpoint (tmid; rff; sign-flip)", n, ok, wall, peak, p, "" if ok else out))
        print(rows[-1], flush=True)
    for tool in a.tools:
        for n in a.ns:
            # Under /usr/bin/time -v, like ours: getrusage's children maximum only shows a peak
            # above every earlier child's (hyppo after dcor came out as nan).
            ok, wall, peak, out = timed(["/usr/bin/time", "-v", sys.executable, __file__, "one", tool,
                                         str(n), str(a.resamples), "0"],
                                        a.mem_limit_gb, a.timeout)
            p = json.loads(out)["p_value"] if ok else None
            name = {"dcor": "dcor energy test (permutation)", "hyppo": "hyppo MMD (permutation)"}[tool]
            rows.append((name, n, ok, wall, peak, p, "" if ok else out))
            print(rows[-1], flush=True)
    with open(os.path.join(a.out, "timing.csv"), "w") as f:
        f.write("method,n,ok,wall_s,peak_rss_mb,p_value,note\n")
        for r in rows:
            f.write(",".join(str(v) for v in r[:6]) + "," + r[6].replace(",", ";") + "\n")


def cmd_power(a):
    os.makedirs(a.out, exist_ok=True)
    # Warm-up: compile the peers' numba kernels before any budget clock starts.
    wx, wy = scenario("mean-shift", 60, np.random.default_rng(0))
    peer_test("hyppo", wx, wy, 0, 0, fast=True)
    peer_test("dcor", wx, wy, 9, 0)
    path = os.path.join(a.out, "power_peers.csv")
    with open(path, "w") as f:
        f.write("scenario,n,method,reps,rejections,mean_wall_s\n")
        for sc in a.scenarios:
            for tool, label, fast, res in [
                ("hyppo", "hyppo MMD (chi-square approx.)", True, 0),
                ("dcor", "dcor energy (99 permutations)", False, 99),
            ]:
                for n in a.ns:
                    rng = np.random.default_rng(12345 + n)
                    rej, done, t0 = 0, 0, time.perf_counter()
                    for rep in range(a.reps):
                        x, y = scenario(sc, n, rng)
                        p = peer_test(tool, x, y, res, rep, fast=fast)
                        rej += p <= 0.05
                        done += 1
                        if time.perf_counter() - t0 > a.budget:
                            break
                    wall = (time.perf_counter() - t0) / max(done, 1)
                    f.write(f"{sc},{n},{label},{done},{rej},{wall:.3f}\n")
                    f.flush()
                    print(sc, n, label, done, rej, f"{wall:.2f}s", flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("timing")
    t.add_argument("--ns", type=lambda s: [int(v) for v in s.split(",")], default=[1000, 2000, 5000])
    t.add_argument("--ours-ns", type=lambda s: [int(v) for v in s.split(",")],
                   default=[1000, 2000, 5000, 10000, 100000, 1000000])
    t.add_argument("--tools", type=lambda s: s.split(","), default=["dcor", "hyppo"])
    t.add_argument("--resamples", type=int, default=200)
    t.add_argument("--ours-repeats", type=int, default=3)
    t.add_argument("--timeout", type=int, default=900)
    t.add_argument("--mem-limit-gb", type=float, default=16)
    t.add_argument("--out", default=os.path.join(HERE, "results"))
    p = sub.add_parser("power")
    p.add_argument("--ns", type=lambda s: [int(v) for v in s.split(",")], default=[200, 500, 1000, 2000, 5000])
    p.add_argument("--reps", type=int, default=100)
    p.add_argument("--budget", type=float, default=120)
    p.add_argument("--scenarios", type=lambda s: s.split(","), default=["mean-shift", "scale-shift", "blobs"])
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    o = sub.add_parser("one")
    o.add_argument("tool")
    o.add_argument("n", type=int)
    o.add_argument("resamples", type=int)
    o.add_argument("seed", type=int)
    a = ap.parse_args()
    if a.cmd == "one":
        one(a.tool, a.n, a.resamples, a.seed)
    elif a.cmd == "timing":
        cmd_timing(a)
    else:
        cmd_power(a)


if __name__ == "__main__":
    main()
