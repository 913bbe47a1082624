#!/usr/bin/env python3
"""Helpers of train.sh (python3 standard library only).

  train_canon.py pngs DIR N          write N deterministic 32x32 RGB PNGs into DIR
  train_canon.py hash OUTDIR         canonicalise the outputs of train.sh into OUTDIR/canon/,
                                     write OUTDIR/hashes.txt (sha256  label, sorted) and
                                     append what was left out to OUTDIR/notes.txt

Canonical forms (so that only deterministic content is compared):
  * JSON / JSONL: wall-clock keys dropped at any depth (a key named `seconds`, ending in
    `_seconds` or `_per_s`, except the option `max_seconds`), then dumped with sorted keys
    (python's float repr round-trips every f64 bit for bit);
  * grid PNGs: named by step number (`grid-step-N`), whatever the file naming
    (`samples-00000004.png`, `grids/step_0000006.png`, ...), and string values in JSON that
    name a grid file are rewritten the same way;
  * .safetensors files (checkpoints, FID statistics): the file with its JSON header re-written
    with sorted keys (padded with spaces to 8 bytes, as safetensors does), the data section
    byte for byte. The raw file is NOT reproducible: the writer serialises `__metadata__`
    from a Rust HashMap, whose key order changes from process to process (the data section,
    the header's tensor entries and the metadata values are identical). For checkpoints also
    `<name>.tensors` (one line per tensor, sorted by name: dtype, shape, sha256 of its bytes)
    and `<name>.metadata.json` (`__metadata__`, sorted), so that a mismatch can be traced to
    weights or to metadata.
"""
import hashlib
import json
import os
import re
import shutil
import struct
import sys
import zlib

# ---------------------------------------------------------------------------- images


def write_png(path, width, height, rgb):
    """8-bit RGB PNG, filter 0 on every row, zlib level 9."""
    raw = b"".join(
        b"\x00" + bytes(rgb[(y * width) * 3:(y * width + width) * 3]) for y in range(height)
    )

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def make_pngs(folder, n):
    """The colour patterns of ref-impl/tests/mgm_e2e.rs (`write_images`), n images."""
    os.makedirs(folder, exist_ok=True)
    for k in range(n):
        data = [(x * (c + 1) * 7 + y * 5 + k * 29 + c * 80) % 256
                for y in range(32) for x in range(32) for c in range(3)]
        write_png(os.path.join(folder, f"img{k:02}.png"), 32, 32, data)

# ---------------------------------------------------------------------------- canonical forms


GRID = re.compile(r"(?:^|/)(?:samples|step|grid)[-_]?0*(\d+)\.png$")


def is_timing(key):
    return key != "max_seconds" and (
        key == "seconds" or key.endswith("_seconds") or key.endswith("_per_s"))


def strip(obj, dropped, where=""):
    """`obj` without wall-clock keys; grid paths renamed; dropped keys recorded."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if is_timing(k):
                dropped.add(f"{where}{k}")
            else:
                out[k] = strip(v, dropped, f"{where}{k}.")
        return out
    if isinstance(obj, list):
        return [strip(v, dropped, where) for v in obj]
    if isinstance(obj, str):
        m = GRID.search(obj)
        if m:
            return f"grid-step-{int(m.group(1))}"
    return obj


def canon_json(text, dropped):
    return json.dumps(strip(json.loads(text), dropped), sort_keys=True, indent=1) + "\n"


def canon_jsonl(text, dropped):
    return "".join(json.dumps(strip(json.loads(l), dropped), sort_keys=True) + "\n"
                   for l in text.splitlines() if l.strip())


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def canon_safetensors(path):
    """The file with its header re-serialised with sorted keys; data section unchanged."""
    header, data = read_safetensors(path)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_parts(path):
    header, data = read_safetensors(path)
    meta = header.pop("__metadata__", {})
    lines = []
    for name in sorted(header):
        h = header[name]
        a, b = h["data_offsets"]
        lines.append(f"{name} {h['dtype']} {h['shape']} {hashlib.sha256(data[a:b]).hexdigest()}\n")
    return "".join(lines), json.dumps(meta, sort_keys=True, indent=1) + "\n"

# ---------------------------------------------------------------------------- hashing


def hash_outputs(out):
    canon = os.path.join(out, "canon")
    shutil.rmtree(canon, ignore_errors=True)
    notes = []
    labels = []

    def put_text(label, text):
        put_bytes(label, text.encode())

    def put_bytes(label, blob):
        p = os.path.join(canon, label)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(blob)
        labels.append(label)

    def put_file(label, src):
        p = os.path.join(canon, label)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        shutil.copyfile(os.path.join(out, src), p)
        labels.append(label)

    def read(rel):
        with open(os.path.join(out, rel)) as f:
            return f.read()

    def json_file(label, rel, lines=False):
        dropped = set()
        text = read(rel)
        put_text(label, canon_jsonl(text, dropped) if lines else canon_json(text, dropped))
        if dropped:
            notes.append(f"{label} (from {rel}): wall-clock fields removed: "
                         + ", ".join(sorted(dropped)))

    def safetensors(label, rel):
        put_bytes(label, canon_safetensors(os.path.join(out, rel)))
        notes.append(f"{label} (from {rel}): header re-written with sorted keys")

    def checkpoint(label, rel):
        safetensors(label, rel)
        tensors, meta = safetensors_parts(os.path.join(out, rel))
        put_text(label.replace(".safetensors", ".tensors"), tensors)
        put_text(label.replace(".safetensors", ".metadata.json"), meta)

    def grids(run):
        found = {}
        for root, _, files in os.walk(os.path.join(out, run)):
            for name in files:
                rel = os.path.relpath(os.path.join(root, name), out)
                m = GRID.search(rel)
                if m:
                    step = int(m.group(1))
                    if step in found:
                        sys.exit(f"two grids for step {step}: {found[step]}, {rel}")
                    found[step] = rel
        if not found:
            sys.exit(f"no sample grids found under {run}/")
        for step, rel in sorted(found.items()):
            put_file(f"{run}/grid-step-{step}", rel)
        notes.append(f"{run}: grids {', '.join(found[s] for s in sorted(found))} hashed as "
                     f"{run}/grid-step-N")

    # 1. toy run
    for f in ["samples.npy", "target.npy", "losses.csv", "curve.csv", "scatter.png", "losses.png"]:
        put_file(f"toy/{f}", f"toy/{f}")
    json_file("toy/metrics.json", "toy/metrics.json")
    # 2. critic checks
    for name in sorted(os.listdir(os.path.join(out, "critic"))):
        if name.endswith(".stdout.json"):
            json_file(f"critic/{name.replace('.stdout.json', '.json')}", f"critic/{name}")
    # 3. image pipeline
    checkpoint("warmup/checkpoint.safetensors", "warmup/checkpoint.safetensors")
    json_file("warmup/losses.jsonl", "warmup/losses.jsonl", lines=True)
    json_file("warmup/summary.json", "warmup.stdout")
    grids("warmup")
    checkpoint("mgm/checkpoint-step3.safetensors", "snapshots/mgm-checkpoint-step3.safetensors")
    json_file("mgm/losses-step3.jsonl", "snapshots/mgm-losses-step3.jsonl", lines=True)
    json_file("mgm/summary-step3.json", "snapshots/mgm-summary-step3.json")
    checkpoint("mgm/checkpoint.safetensors", "mgm/checkpoint.safetensors")
    json_file("mgm/losses.jsonl", "mgm/losses.jsonl", lines=True)
    json_file("mgm/summary.json", "mgm/summary.json")
    put_file("mgm/losses.png", "mgm/losses.png")
    grids("mgm")
    safetensors("fid/ref-stats.safetensors", "fid/ref-stats.safetensors")
    json_file("fid/fid-warmup-checkpoint.json", "fid/fid-warmup-checkpoint.stdout.json")
    json_file("fid/fid-images.json", "fid/fid-images.stdout.json")
    checkpoint("mgm-fid/checkpoint.safetensors", "mgm-fid/checkpoint.safetensors")
    json_file("mgm-fid/losses.jsonl", "mgm-fid/losses.jsonl", lines=True)
    json_file("mgm-fid/fid.jsonl", "mgm-fid/fid.jsonl", lines=True)
    json_file("mgm-fid/summary.json", "mgm-fid/summary.json")
    put_file("mgm-fid/fid.png", "mgm-fid/fid.png")
    put_file("mgm-fid/losses.png", "mgm-fid/losses.png")
    grids("mgm-fid")

    sums = {}
    for label in labels:
        with open(os.path.join(canon, label), "rb") as f:
            sums[label] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(out, "hashes.txt"), "w") as f:
        for label in sorted(sums):
            f.write(f"{sums[label]}  {label}\n")
    # Resume exactness, as a readable cross-check (not a hash): the split run 3 + resume 3
    # and the uninterrupted 6-step run with FID must have the same per-step losses.
    same = read_canon(canon, "mgm/losses.jsonl") == read_canon(canon, "mgm-fid/losses.jsonl")
    notes.append("cross-check: mgm/losses.jsonl (3 steps + --resume to 6) "
                 + ("==" if same else "!=")
                 + " mgm-fid/losses.jsonl (6 steps in one run, FID at 3 and 6), timing removed")
    with open(os.path.join(out, "notes.txt"), "a") as f:
        f.write("\nHashed outputs, canonical forms in canon/ (check: cd canon && "
                "sha256sum -c ../hashes.txt):\n")
        for n in notes:
            f.write(f"  {n}\n")
    print(f"wrote {os.path.join(out, 'hashes.txt')} ({len(sums)} files)")


def read_canon(canon, label):
    with open(os.path.join(canon, label)) as f:
        return f.read()


if __name__ == "__main__":
    if sys.argv[1] == "pngs":
        make_pngs(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "hash":
        hash_outputs(sys.argv[2])
    else:
        sys.exit(__doc__)
