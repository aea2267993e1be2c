"""FRL-DGT recognition time per sample on this machine, to set beside the paper's 0.384 s (GPU).

    python benchmarks/bench_frl_dgt_latency.py [--presets paper cpu] [--batches 1 32] [--repeats 20]
                                               [--budget 20] [--threads N] [--device cpu]

What is timed: the model's forward pass alone, FRL-DGT (``displacement="dgm"``, the full model: DGM, local,
global and full-face fusion, head) in eval mode under :func:`torch.inference_mode`, on random onset and apex
frames (B, 3, S, S) at the preset's ``input_size`` S (paper 224, cpu 56), so the model resizes nothing. AU regions
are the template boxes (``regions="au-template"``, no box input); ``--regions au-input`` adds an ``au_boxes``
input instead. Not timed: reading frames, face detection, landmarks, alignment, cropping: none of the preprocessing.

The paper (Zhai et al., CVPR 2023, sec. 4.4, "Running Time") reports 0.384 s per sample "only for ME recognition"
on an RTX 3080 Ti GPU (i9 CPU at 2.8 GHz), and 0.416 s including reading the picture and detecting the face. Its
batch size at that measurement is not stated.

For each (preset, batch size): warm-up passes, then forward passes until ``--repeats`` are done or ``--budget``
seconds are spent (at least 3). It prints the median and the interquartile range of the seconds per sample (one
pass's time divided by the batch size), the intra-op threads and the parameter counts.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")  # Linux; elsewhere platform's answer
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def time_forward(model, inputs: dict, repeats: int, budget: float, warmup: int) -> list[float]:
    """Seconds of each timed forward pass (``time.perf_counter``), after ``warmup`` untimed passes."""
    import torch

    with torch.inference_mode():
        for _ in range(warmup):
            model(inputs)
        if inputs["onset"].is_cuda:
            torch.cuda.synchronize()
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < repeats and (len(times) < 3 or time.perf_counter() - start < budget):
            t0 = time.perf_counter()
            model(inputs)
            if inputs["onset"].is_cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "cpu"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--repeats", type=int, default=20, help="timed passes per row, at most")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per row, at most (3 passes at least)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--regions", default="au-template", choices=["au-template", "au-input"])
    parser.add_argument("--device", default="cpu", help="a training.device value: cpu, cuda, cuda:N, auto")
    args = parser.parse_args()

    import numpy as np
    import torch

    from merkit.models import build_model, count_parameters
    from merkit.models.frl_dgt import template_boxes
    from merkit.training.engine import describe_device, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device {describe_device(device)}; CPU {_cpu_name()}, {os.cpu_count()} logical cores; "
          f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; "
          f"load average {os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f} / {os.getloadavg()[2]:.2f}")
    print("| preset | input | batch | s/sample median | IQR (s/sample) | passes | params (DGM) |")
    print("|---|---|---|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    for preset in args.presets:
        torch.manual_seed(0)
        model = build_model("frl_dgt", 3, preset, regions=args.regions).to(device).eval()
        c = model.config
        params, dgm = count_parameters(model), count_parameters(model.dgm)
        for batch in args.batches:
            shape = (batch, c.image_channels, c.input_size, c.input_size)
            inputs = {"onset": torch.rand(shape, generator=generator), "apex": torch.rand(shape, generator=generator)}
            if args.regions == "au-input":
                boxes = torch.from_numpy(template_boxes(c.input_size, c.region_side, c.template_crop) / c.input_size)
                inputs["au_boxes"] = boxes.float().expand(batch, -1, -1)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            per_sample = np.array(time_forward(model, inputs, args.repeats, args.budget, args.warmup)) / batch
            q1, q3 = np.percentile(per_sample, [25, 75])
            print(f"| {preset} | {c.input_size}² | {batch} | {statistics.median(per_sample):.4f} | "
                  f"{q1:.4f}–{q3:.4f} | {len(per_sample)} | {params:,} ({dgm:,}) |", flush=True)


if __name__ == "__main__":
    main()
