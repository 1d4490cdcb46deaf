"""What the event head's first level costs per frame on YUV 4:2:0 frames, as convolutions and as a matrix product.

The student's first level is a 4×4 patch conv at stride 4; `edgeav run` hands it NV12 frames. Over runs of 64
frames (+1, as the run calls the head on a file), one model thread, freed memory kept for reuse as the run keeps it,
the deploy form:

- convolutions: the luma plane and the interleaved chroma made float, oneDNN's conv of each (stride 4 and 2) with
  the BT.601 conversion folded in, summed;
- patch product: `yuv420_patches` gathers each patch's bytes from the uint8 frames, one `addmm` with
  `yuv420_first_level`'s matrix (what `TorchBackend.encode_event_frames` does);
- the whole frame pass each way, the largest difference of their codes, and the RGB frame pass (`--rgb`: one
  strided conv of the frames made float) beside them, and the RGB pass with a patch product too.

Interleaved rounds, median of each round's median call. Writes results/first_level.{json,md}.

    python -m research.first_level
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import call_times, command_line, machine, write_result
from research import RESULTS

BATCH = 64  # the run's EVENT_BATCH


def nv12_conv(level, planes):
    """The NV12 first level as two strided convs of the planes made float (the matrix's rows laid out as kernels)."""
    import torch.nn.functional as F

    n, rows, w = planes.shape
    h, s = rows * 2 // 3, level.stride
    flat = planes.reshape(n, rows * w)
    luma_w = level.weight[: s * s].t().reshape(-1, 1, s, s)
    chroma_w = level.weight[s * s :].t().reshape(-1, s // 2, s // 2, 2).permute(0, 3, 1, 2).contiguous()
    luma = flat[:, : h * w].view(n, 1, h, w).float()
    chroma = flat[:, h * w :].view(n, h // 2, w // 2, 2).permute(0, 3, 1, 2).float()
    a = F.conv2d(luma, luma_w, level.bias, s)
    a += F.conv2d(chroma, chroma_w, None, s // 2)
    return a


def rgb_product(head, frames):
    """The RGB frame pass with its first level as a product over each 4×4 patch's 48 bytes (gathered as 3 int32s a
    patch row): what `--rgb` would cost that way."""
    import torch

    first = head.encoder.convs[0][0]
    s, c = first.stride[0], first.out_channels
    weight = torch.cat([first.weight[:, :3] + first.weight[:, 3:], -first.weight[:, 3:]]) / 255
    weight = weight.permute(0, 2, 3, 1).flatten(1).t().contiguous()  # (y, x, RGB) rows
    bias = torch.cat([first.bias, first.bias.new_zeros(c)])
    n, h, w, _ = frames.shape
    rows = torch.from_numpy(frames).view(n, h, w * 3).view(torch.int32).view(n, h // s, s, w // s, 3)
    patches = rows.transpose(2, 3).contiguous().view(torch.uint8).reshape(-1, 3 * s * s)
    a = torch.addmm(bias, patches.float(), weight).view(n, h // s, w // s, -1).permute(0, 3, 1, 2)
    return head._from_first_level(a.view(1, *a.shape))


def measure(model: str, rounds: int, calls: int) -> dict:
    import torch

    from edgeav.heap import keep_freed_memory
    from edgeav.io import open_source
    from edgeav.models import load_model
    from edgeav.models.events import pooled_tensor, yuv420_patches
    from edgeav.models.rep import deploy_form

    torch.set_num_threads(1)  # the run's model threads on 2 cores
    keep_freed_memory()  # as `edgeav run` does: no page faults of fresh mappings in the timings
    head = deploy_form(load_model(model)).events
    clip = "edgeav/assets/clips/solarwolf-s11_10-40.mp4"  # bundled: 30 s at 25 fps
    size = load_model(model).cfg.frame_size
    rgb, nv12 = (
        np.stack([f for _, f in open_source(clip, head.spec.fps, size, yuv420=yuv)][: BATCH + 1]) for yuv in (0, 1)
    )
    planes, level = torch.from_numpy(nv12), head.yuv420_first_level(1 / 255)

    def product():
        return torch.addmm(level.bias, yuv420_patches(planes, level.stride).flatten(0, 2).float(), level.weight)

    def pass_by_convs():
        a = nv12_conv(level, planes)
        return head._from_first_level(a.view(1, *a.shape))

    forms = {
        "first level, convolutions": lambda: nv12_conv(level, planes),
        "first level, patch product": product,
        "frame pass, convolutions": pass_by_convs,
        "frame pass, patch product (`edgeav run`)": lambda: head.encode_yuv420(planes[None], level),
        "frame pass on RGB frames, convolution (`edgeav run --rgb`)": lambda: head.encode_pooled(
            pooled_tensor(rgb[None], 1, unit=False), scale=1 / 255
        ),
        "frame pass on RGB frames, patch product": lambda: rgb_product(head, rgb),
    }
    per_round: dict[str, list[float]] = {k: [] for k in forms}
    with torch.no_grad():
        for _ in range(rounds):
            for name, fn in forms.items():
                per_round[name].append(float(np.median(call_times(fn, 5, calls, 0.2))) * 1e3 / BATCH)
        ref = pass_by_convs()[0]
        diff = float((head.encode_yuv420(planes[None], level)[0] - ref).abs().max())
        rgb_ref = head.encode_pooled(pooled_tensor(rgb[None], 1, unit=False), scale=1 / 255)[0]
        rgb_diff = float((rgb_product(head, rgb)[0] - rgb_ref).abs().max())
    return {
        "forms": {k: {"us_per_frame": float(np.median(v)), "rounds_us": v} for k, v in per_round.items()},
        "codes_max_abs_diff": diff,
        "rgb_codes_max_abs_diff": rgb_diff,
        "codes_max_abs": float(ref.abs().max()),
    }


def markdown(res: dict, cmd: str) -> str:
    lines = [
        f"The event head's first level ({res['model']}'s 4×4 patch conv, deploy form) on NV12 frames, over runs of "
        f"{BATCH} frames at 128×96, one thread, freed memory kept for reuse as `edgeav run` keeps it, median of "
        f"{res['rounds']} interleaved rounds. Machine: {res['machine']['cpu']}.",
        "",
        "| what | µs per frame |",
        "|---|---|",
        *(f"| {k} | {v['us_per_frame']:.0f} |" for k, v in res["forms"].items()),
        "",
        f"Codes of the frame pass, patch product against convolutions: largest difference "
        f"{res['codes_max_abs_diff']:.1e} (codes up to {res['codes_max_abs']:.1f}); on RGB frames "
        f"{res['rgb_codes_max_abs_diff']:.1e}.",
        "",
        f"Command: `{cmd}`",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    res = {"model": a.model, "rounds": a.rounds, "machine": machine()}
    res.update(measure(a.model, a.rounds, a.calls))
    write_result("first_level", res, markdown(res, command_line("research.first_level", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
