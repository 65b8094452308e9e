"""Verification of a derivative against its original (the comparisons are pure).

- re-wrap: the packet stream hashes (``streamhash`` muxer, ``-c copy``) are equal, and so is the
  hash of the decoded audio — which catches a lost edit list (AAC priming) that packets miss.
- re-encode: the derivative decodes end to end without an error, and each stream's duration is
  within one frame of the original's (decoded timelines from the ``framecrc`` muxer); with video,
  every decoded picture is compared with the original's: the mean PSNR must reach
  ``min_psnr_db`` and no frame's SSIM (all planes) may fall below ``min_ssim``, over as many
  frame pairs as the original has pictures (``QualityLimits``; README "Archival profiles").
- FFV1: the decoded-picture hash equals the original's; the decoded audio has the same number of
  samples.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from station.transcode.errors import VerificationError


@dataclass
class Track:
    index: int
    kind: str
    tb: Fraction
    frames: int = 0
    start: int | None = None
    end: int | None = None
    total: int = 0  # sum of frame durations (audio: samples when tb is 1/rate)
    durations: list[int] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return float((self.end - self.start) * self.tb)

    @property
    def frame_seconds(self) -> float:
        return float(statistics.median(self.durations) * self.tb) if self.durations else 0.0


def parse_streamhash(text: str) -> dict[str, str]:
    """``0,v,SHA256=ab…`` lines to ``{"0,v": "SHA256=ab…"}``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(",", 2)
        if len(parts) == 3:
            out[f"{parts[0]},{parts[1]}"] = parts[2]
    return out


def parse_framecrc(text: str) -> list[Track]:
    tracks: dict[int, Track] = {}
    kinds: dict[int, str] = {}
    tbs: dict[int, Fraction] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            name, _, idx = key.strip().partition(" ")
            value = value.strip()
            if name == "tb" and idx.isdigit():
                tbs[int(idx)] = Fraction(value)
            elif name == "media_type" and idx.isdigit():
                kinds[int(idx)] = value
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 5:
            continue
        try:
            sidx, pts, dur = int(fields[0]), int(fields[2]), int(fields[3])
        except ValueError:
            continue
        t = tracks.get(sidx)
        if t is None:
            t = tracks[sidx] = Track(sidx, kinds.get(sidx, "unknown"), tbs.get(sidx, Fraction(1)))
        t.frames += 1
        t.total += dur
        t.durations.append(dur)
        t.start = pts if t.start is None else min(t.start, pts)
        t.end = pts + dur if t.end is None else max(t.end, pts + dur)
    return [tracks[i] for i in sorted(tracks)]


@dataclass
class Verdict:
    method: str
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)

    def add(self, name: str, ok: bool, src: Any, dst: Any, **extra: Any) -> None:
        self.checks.append({"check": name, "ok": ok, "original": src, "derivative": dst, **extra})

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "ok": self.ok, "checks": self.checks}

    def raise_if_failed(self, where: str) -> None:
        if not self.ok:
            bad = [c["check"] for c in self.checks if not c["ok"]] or ["nothing was compared"]
            raise VerificationError(
                f"校验未通过 / derivative failed verification: {', '.join(bad)}", where=where
            )


def _by_kind(tracks: list[Track], kind: str) -> list[Track]:
    return [t for t in tracks if t.kind == kind]


def compare_rewrap(
    src_packets: str, dst_packets: str, src_audio: str | None, dst_audio: str | None
) -> Verdict:
    v = Verdict("rewrap")
    a, b = parse_streamhash(src_packets), parse_streamhash(dst_packets)
    v.add("packet streamhash", bool(a) and a == b, a, b)
    if src_audio is not None or dst_audio is not None:
        a2, b2 = parse_streamhash(src_audio or ""), parse_streamhash(dst_audio or "")
        v.add("decoded audio hash", bool(a2) and a2 == b2, a2, b2)
    return v


def compare_timelines(src: list[Track], dst: list[Track], method: str = "reencode") -> Verdict:
    """Each stream of the original has a counterpart whose duration is within one frame."""
    v = Verdict(method)
    for kind in ("video", "audio"):
        s_tracks, d_tracks = _by_kind(src, kind), _by_kind(dst, kind)
        if len(s_tracks) != len(d_tracks):
            v.add(f"{kind} streams", False, len(s_tracks), len(d_tracks))
            continue
        for s, d in zip(s_tracks, d_tracks, strict=True):
            tol = max(s.frame_seconds, d.frame_seconds) + 1e-3
            ok = d.frames > 0 and abs(s.seconds - d.seconds) <= tol
            v.add(
                f"{kind} duration",
                ok,
                round(s.seconds, 6),
                round(d.seconds, 6),
                tolerance=round(tol, 6),
                frames=[s.frames, d.frames],
            )
    return v


def compare_ffv1(
    src_picture: str | None, dst_picture: str | None, src_audio: list[Track], dst_audio: list[Track]
) -> Verdict:
    v = Verdict("ffv1")
    if src_picture is not None or dst_picture is not None:
        a, b = parse_streamhash(src_picture or ""), parse_streamhash(dst_picture or "")
        v.add("decoded picture hash", bool(a) and a == b, a, b)
    s_tracks, d_tracks = _by_kind(src_audio, "audio"), _by_kind(dst_audio, "audio")
    if s_tracks or d_tracks:
        s_len = [float(t.total * t.tb) for t in s_tracks]
        d_len = [float(t.total * t.tb) for t in d_tracks]
        ok = len(s_len) == len(d_len) and all(
            abs(x - y) < 0.5 * float(t.tb) + 1e-9
            for x, y, t in zip(s_len, d_len, s_tracks, strict=False)
        )
        v.add("decoded audio length", ok, s_len, d_len)
    return v


@dataclass(frozen=True)
class QualityLimits:
    """The tolerance of a re-encode: mean PSNR in dB over all frames, lowest per-frame SSIM."""

    min_psnr_db: float = 30.0
    min_ssim: float = 0.90


def _stat_values(text: str, key: str) -> list[float]:
    """``key:value`` of every line of a psnr/ssim stats file (``inf`` for identical frames)."""
    values: list[float] = []
    for line in text.splitlines():
        for part in line.split():
            name, sep, value = part.partition(":")
            if sep and name == key:
                try:
                    values.append(float(value))
                except ValueError:
                    continue
    return values


def parse_psnr(text: str) -> list[float]:
    return _stat_values(text, "psnr_avg")


def parse_ssim(text: str) -> list[float]:
    return _stat_values(text, "All")


def compare_quality(
    psnr_text: str, ssim_text: str, src_frames: int, limits: QualityLimits
) -> list[dict[str, Any]]:
    """The picture checks of a re-encode (see module docstring), as Verdict check rows."""
    psnr, ssim = parse_psnr(psnr_text), parse_ssim(ssim_text)
    finite = [p for p in psnr if p != float("inf")]
    mean_psnr = statistics.fmean(finite) if finite else (float("inf") if psnr else 0.0)
    low_ssim = min(ssim) if ssim else 0.0
    worst = ssim.index(low_ssim) + 1 if ssim else None
    pairs_ok = bool(psnr) and len(psnr) == len(ssim) and len(psnr) >= src_frames > 0
    return [
        {
            "check": "decoded frames compared",
            "ok": pairs_ok,
            "original": src_frames,
            "derivative": len(ssim),
        },
        {
            "check": "mean PSNR",
            "ok": bool(psnr) and mean_psnr >= limits.min_psnr_db,
            "original": "decoded pictures",
            "derivative": round(mean_psnr, 3) if mean_psnr != float("inf") else "inf",
            "tolerance": f">= {limits.min_psnr_db} dB",
        },
        {
            "check": "lowest SSIM",
            "ok": bool(ssim) and low_ssim >= limits.min_ssim,
            "original": "decoded pictures",
            "derivative": round(low_ssim, 6),
            "tolerance": f">= {limits.min_ssim}",
            "frame": worst,
        },
    ]


def read_aux(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def judge(method: str, aux: dict[str, Path], limits: QualityLimits | None = None) -> Verdict:
    """Compare the aux files of the making run (``src_*``), of the check run (``dst_*``) and,
    for a re-encode with video, of the picture comparison (``quality_*``)."""
    get = {k: read_aux(p) for k, p in aux.items()}
    if method == "rewrap":
        return compare_rewrap(
            get.get("src_packets") or "",
            get.get("dst_packets") or "",
            get.get("src_audio"),
            get.get("dst_audio"),
        )
    if method == "reencode":
        src_tracks = parse_framecrc(get.get("src_timeline") or "")
        verdict = compare_timelines(src_tracks, parse_framecrc(get.get("dst_timeline") or ""))
        if "quality_psnr" in aux or "quality_ssim" in aux:
            src_frames = next((t.frames for t in src_tracks if t.kind == "video"), 0)
            verdict.checks += compare_quality(
                get.get("quality_psnr") or "",
                get.get("quality_ssim") or "",
                src_frames,
                limits or QualityLimits(),
            )
        return verdict
    if method == "ffv1":
        return compare_ffv1(
            get.get("src_picture"),
            get.get("dst_picture"),
            parse_framecrc(get.get("src_timeline") or ""),
            parse_framecrc(get.get("dst_timeline") or ""),
        )
    raise ValueError(f"unknown method {method!r}")
