"""H.265 → H.264 re-encode and its picture-by-picture check, against a baseline of
the same run: decoding the H.265 original once (what any player must do anyway).

    .venv/bin/python bench/hevc_reencode.py [--seconds 20] [--size 1920x1080] [--rate 25]

Prints, for a libx265 clip made by the script: the decode baseline, the re-encode (the exact
argv of ``plan.build_command``, x264 veryfast CRF 20 + AAC), the PSNR/SSIM comparison (the exact
argv of ``plan.build_quality``), each as seconds and as a multiple of the baseline and of real
time, and the mean PSNR / lowest SSIM that the verification compares with its tolerance.
The machine is shared: treat single figures as noisy, the ratios as the result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from station.transcode.plan import build_command, build_quality, choose_method
from station.transcode.probe import parse_probe
from station.transcode.verify import QualityLimits, compare_quality


def timed(argv: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--rate", default="25")
    args = ap.parse_args()
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    ffprobe = shutil.which("ffprobe") or "ffprobe"
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        src = work / "src.mp4"
        subprocess.run(
            [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc2=size={args.size}:rate={args.rate}:duration={args.seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:duration={args.seconds}",
             "-c:v", "libx265", "-preset", "fast", "-x265-params", "log-level=error",
             "-tag:v", "hvc1", "-c:a", "aac", str(src)],
            check=True,
        )  # fmt: skip
        probed = subprocess.run(
            [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
             str(src)], check=True, capture_output=True,
        )  # fmt: skip
        method = choose_method("mp4-h264", parse_probe(json.loads(probed.stdout)))
        decode = timed([ffmpeg, "-v", "error", "-i", str(src), "-f", "null", "-"])
        make = build_command(ffmpeg, method, src, work / "dst.mp4", work, {})
        encode = timed(make.argv)
        quality = build_quality(ffmpeg, method, src, work / "dst.mp4", work)
        compare = timed(quality.argv)
        frames = round(args.seconds * float(args.rate))
        rows = compare_quality(
            (work / "quality.psnr").read_text(), (work / "quality.ssim").read_text(), frames,
            QualityLimits(),
        )  # fmt: skip
        out = {
            "clip": f"{args.size} {args.rate} fps {args.seconds:g} s H.265 (libx265 fast)",
            "method": method.name,
            "decode_baseline_s": round(decode, 2),
            "reencode_s": round(encode, 2),
            "reencode_x_baseline": round(encode / decode, 2),
            "reencode_x_realtime": round(encode / args.seconds, 2),
            "compare_s": round(compare, 2),
            "compare_x_baseline": round(compare / decode, 2),
            "compare_x_realtime": round(compare / args.seconds, 2),
            "checks": {r["check"]: [r["ok"], r["derivative"]] for r in rows},
        }
        print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
