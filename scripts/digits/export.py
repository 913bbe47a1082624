#!/usr/bin/env python3
"""Writes scikit-learn's 8x8 handwritten digits (1,797 images, UCI "optdigits" test set) as the
PNG folders `midpoint-train` reads, with a fixed train / held-out split.

    python3 export.py OUT          # needs scikit-learn (scripts/digits/export.sh installs it)

Output:
    OUT/train/<digit>/<index>.png      8x8 8-bit grayscale, 1,442 images
    OUT/held-out/<digit>/<index>.png   8x8 8-bit grayscale, 355 images
    OUT/split.json                     the split, counts and a SHA-256 of the pixel data

The split is fixed and stratified: within each digit class, in scikit-learn's order, every
fifth image (positions 4, 9, 14, ...) is held out. Pixel values 0..16 are mapped to 0..255 by
round(v * 255 / 16). Only the standard library writes the PNGs (zlib + struct), so the files
do not depend on an imaging library's version.
"""
import hashlib
import json
import os
import struct
import sys
import zlib


def png_gray(path, rows):
    """Writes an 8-bit grayscale PNG; `rows` is a list of lists of ints in 0..255."""
    h, w = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(r) for r in rows)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: export.py OUT")
    out = sys.argv[1]
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("export.py: scikit-learn is not installed (scripts/digits/export.sh installs it into a venv)")
    import sklearn

    digits = load_digits()
    images, labels = digits.images, digits.target
    for split in ("train", "held-out"):
        if os.path.isdir(os.path.join(out, split)) and os.listdir(os.path.join(out, split)):
            sys.exit(f"export.py: {os.path.join(out, split)} is not empty")
    seen = [0] * 10
    counts = {"train": [0] * 10, "held-out": [0] * 10}
    sha = hashlib.sha256()
    for i, (img, y) in enumerate(zip(images, labels)):
        y = int(y)
        split = "held-out" if seen[y] % 5 == 4 else "train"
        seen[y] += 1
        rows = [[int(round(float(v) * 255 / 16)) for v in r] for r in img]
        sha.update(bytes(v for r in rows for v in r))
        d = os.path.join(out, split, str(y))
        os.makedirs(d, exist_ok=True)
        png_gray(os.path.join(d, f"{i:04d}.png"), rows)
        counts[split][y] += 1
    summary = {
        "source": f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
        "images": len(labels),
        "rule": "within each class, in scikit-learn's order, positions 4, 9, 14, ... are held out",
        "scaling": "round(v * 255 / 16), v in 0..16",
        "train": sum(counts["train"]),
        "held_out": sum(counts["held-out"]),
        "per_class": counts,
        "pixels_sha256": sha.hexdigest(),
    }
    with open(os.path.join(out, "split.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"{summary['train']} training and {summary['held_out']} held-out 8x8 digits in {out}")


if __name__ == "__main__":
    main()
