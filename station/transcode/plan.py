"""Pure planning: which method a profile uses for an original, and the exact ffmpeg command lines
for making a derivative and for fingerprinting one.

Profiles (README "Archival profiles"):
- ``mp4-h264``: the copy every office PC plays — always H.264 + AAC in MP4. H.264 + AAC already in
  MP4/MOV is re-wrapped (``-c copy``, faststart): no generation loss. Anything else, H.265
  included, is re-encoded to H.264 (x264) + AAC, and the re-encode is checked frame by frame
  against the original's decoded pictures (PSNR/SSIM, ``build_quality``). ``keep_hevc`` (the
  setting ``transcode.keep_hevc``, off by default) re-wraps H.265 as it is instead.
- ``ffv1-mkv``: FFV1 version 3 with slice CRCs in Matroska: a lossless master of the decoded
  picture. Audio packets are copied where Matroska keeps the decoded samples the same; AAC from
  MP4/MOV (whose edit list trims the encoder priming, lost in Matroska) and codecs Matroska
  cannot carry are losslessly re-encoded to FLAC.

Every command also writes small "aux" files (stream hashes, frame timelines of the original as it
was read in the same pass) that verification compares with the derivative's (see verify.py).

Re-encode and FFV1 command lines are built with ffmpeg-python (imported when one is built). A
re-wrap's — the common case, a recorder's H.264/AAC MP4 — are plain lists laid out exactly as
ffmpeg-python lays them out (``_output``; tests/test_transcode_plan.py compares the two), so
that ``station transcode run-once`` starts without ffmpeg-python and its ``future``/``past``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from station.transcode.probe import MediaInfo

PROFILES = ("mp4-h264", "ffv1-mkv")
REWRAP_VIDEO = {"h264"}
KEEP_HEVC_VIDEO = {"h264", "hevc"}
REWRAP_AUDIO = {"aac"}
MKV_COPY_AUDIO = {"pcm_s16le", "pcm_s24le", "pcm_s32le", "flac", "opus", "vorbis"}
# Stream hashes prove "same packets / same decoded samples or pictures" between an original and
# its derivative inside one job: an equality check against accidents, not an identity. murmur3
# (128 bit) runs at near read speed where ffmpeg's own SHA-256 is 4-5 × slower than a plain copy
# (bench/transcode.py). A derivative's identity is its SHA-256 over the file (worker.py).
STREAM_HASH = "murmur3"
GLOBAL_ARGS = ["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y"]


@dataclass(frozen=True)
class Method:
    name: str  # rewrap | reencode | ffv1
    ext: str  # mp4 | m4a | mkv | mka
    has_video: bool
    has_audio: bool
    audio: str | None  # copy | aac | flac | None
    video_tag: str | None = None
    video_filter: str | None = None  # ffv1: full-range "yuvj" pictures relabelled for FFV1


@dataclass(frozen=True)
class EncodeOptions:
    crf: int = 20
    preset: str = "veryfast"
    audio_bitrate: str = "160k"


@dataclass
class Command:
    argv: list[str]
    aux: dict[str, Path] = field(default_factory=dict)


def choose_method(profile: str, info: MediaInfo, *, keep_hevc: bool = False) -> Method:
    """How ``profile`` turns this original into its derivative. ``keep_hevc`` lets H.265 through
    by re-wrapping it; by default it is re-encoded so the copy plays without an HEVC decoder."""
    has_video, has_audio = bool(info.video), bool(info.audio)
    if profile == "mp4-h264":
        ext = "mp4" if has_video else "m4a"
        video_ok = KEEP_HEVC_VIDEO if keep_hevc else REWRAP_VIDEO
        rewrap = (
            info.is_mp4
            and all(s.codec in video_ok for s in info.video)
            and all(s.codec in REWRAP_AUDIO for s in info.audio)
        )
        if rewrap:
            tag = "hvc1" if any(s.codec == "hevc" for s in info.video) else None
            audio_mode = "copy" if has_audio else None
            return Method("rewrap", ext, has_video, has_audio, audio_mode, tag)
        return Method("reencode", ext, has_video, has_audio, "aac" if has_audio else None)
    if profile == "ffv1-mkv":
        ext = "mkv" if has_video else "mka"
        audio: str | None = None
        if has_audio:
            copyable = all(s.codec in MKV_COPY_AUDIO for s in info.audio)
            audio = "copy" if copyable else "flac"
        vf = None
        pix = info.video[0].pix_fmt if info.video else None
        if pix and pix.startswith("yuvj"):
            # FFV1 has no "yuvj" (full-range JPEG) formats; both the derivative and the
            # reference hash of the original go through the same full-range conversion.
            vf = f"scale=in_range=pc:out_range=pc,format={pix.replace('yuvj', 'yuv', 1)}"
        return Method("ffv1", ext, has_video, has_audio, audio, None, vf)
    raise ValueError(f"unknown profile {profile!r}")


def metadata_args(meta: dict[str, str | None]) -> dict[str, str]:
    """``-metadata:g:N key=value`` options, in key order; empty values are left out."""
    pairs = [(k, v) for k, v in sorted(meta.items()) if v not in (None, "")]
    return {f"metadata:g:{i}": f"{k}={v}" for i, (k, v) in enumerate(pairs)}


def _maps(inp: Any, video: bool, audio: bool) -> list[Any]:
    # 0:V = video streams that are not attached pictures (cover art).
    return ([inp["V"]] if video else []) + ([inp["a"]] if audio else [])


def _argv(binary: str, outputs: list[Any]) -> list[str]:
    import ffmpeg  # ffmpeg-python: only for re-encode and FFV1 command lines

    args: list[str] = ffmpeg.merge_outputs(*outputs).get_args()
    return [binary, *GLOBAL_ARGS, *args]


def _output(maps: list[str], filename: Path, **kw: Any) -> list[str]:
    """One output as ffmpeg-python writes it: ``-map`` per stream, ``-f`` first, the other
    options in key order, the file name last."""
    args = [a for m in maps for a in ("-map", m)]
    if "f" in kw:
        args += ["-f", str(kw.pop("f"))]
    for key in sorted(kw):
        args += [f"-{key}", str(kw[key])]
    return [*args, str(filename)]


def _rewrap_maps(video: bool, audio: bool) -> list[str]:
    return (["0:V"] if video else []) + (["0:a"] if audio else [])


def _rewrap_command(
    binary: str, method: Method, src: Path, dst: Path, auxdir: Path, meta: dict[str, str]
) -> Command:
    """The re-wrap (``-c copy``, faststart) and, from the same read of the original, its packet
    hashes and its decoded audio hash."""
    v, a = method.has_video, method.has_audio
    maps = _rewrap_maps(v, a)
    kw: dict[str, Any] = {"c": "copy", "f": "mp4", "movflags": "+faststart+use_metadata_tags"}
    if method.video_tag:
        kw["tag:v"] = method.video_tag  # hvc1: H.265 in MP4 that Apple/Windows players open
    aux = {"src_packets": auxdir / "src.packets"}
    argv = [binary, *GLOBAL_ARGS, "-i", str(src), *_output(maps, dst, **kw, **meta)]
    argv += _output(maps, aux["src_packets"], c="copy", f="streamhash", hash=STREAM_HASH)
    if a:
        aux["src_audio"] = auxdir / "src.audio"
        argv += _output(["0:a"], aux["src_audio"], f="streamhash", hash=STREAM_HASH)
    return Command(argv, aux)


def _rewrap_check(
    binary: str, method: Method, dst: Path, auxdir: Path, from_stdin: bool = False
) -> Command:
    v, a = method.has_video, method.has_audio
    aux = {"dst_packets": auxdir / "dst.packets"}
    # from stdin: the derivative fed by the job (FedTool), read as the MP4 it must be
    source = ["-f", "mov", "-i", "pipe:0"] if from_stdin else ["-i", str(dst)]
    argv = [binary, *GLOBAL_ARGS, *source]
    argv += _output(_rewrap_maps(v, a), aux["dst_packets"], c="copy", f="streamhash",
                    hash=STREAM_HASH)  # fmt: skip
    if a:
        aux["dst_audio"] = auxdir / "dst.audio"
        argv += _output(["0:a"], aux["dst_audio"], f="streamhash", hash=STREAM_HASH)
    return Command(argv, aux)


def build_command(
    binary: str,
    method: Method,
    src: Path,
    dst: Path,
    auxdir: Path,
    metadata: dict[str, str | None],
    opts: EncodeOptions | None = None,
) -> Command:
    """The one ffmpeg run that writes the derivative ``dst`` and the original's aux files."""
    opts = opts or EncodeOptions()
    meta = metadata_args(metadata)
    if method.name == "rewrap":
        return _rewrap_command(binary, method, src, dst, auxdir, meta)
    import ffmpeg  # ffmpeg-python

    inp = ffmpeg.input(str(src))
    v, a = method.has_video, method.has_audio
    aux: dict[str, Path] = {}
    outputs: list[Any] = []
    kw: dict[str, Any]
    if method.name == "reencode":
        kw = {"f": "mp4", "movflags": "+faststart+use_metadata_tags", "fps_mode": "passthrough"}
        if v:
            kw.update(
                {
                    "c:v": "libx264",
                    "preset": opts.preset,
                    "crf": opts.crf,
                    "pix_fmt": "yuv420p",
                    # x264 with 4:2:0 needs even sizes; pad odd ones by one pixel.
                    "vf": "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                }
            )
        if a:
            kw.update({"c:a": "aac", "b:a": opts.audio_bitrate})
        outputs.append(ffmpeg.output(*_maps(inp, v, a), str(dst), **kw, **meta))
        aux["src_timeline"] = auxdir / "src.timeline"
        outputs.append(
            ffmpeg.output(
                *_maps(inp, v, a), str(aux["src_timeline"]), f="framecrc", fps_mode="passthrough"
            )
        )
    elif method.name == "ffv1":
        kw = {"f": "matroska", "fps_mode": "passthrough"}
        if v:
            kw.update({"c:v": "ffv1", "level": 3, "slicecrc": 1, "g": 1, "coder": 1, "context": 1})
            if method.video_filter:
                kw["vf"] = method.video_filter
        if a:
            kw["c:a"] = "copy" if method.audio == "copy" else "flac"
        outputs.append(ffmpeg.output(*_maps(inp, v, a), str(dst), **kw, **meta))
        if v:
            aux["src_picture"] = auxdir / "src.picture"
            pic_kw: dict[str, Any] = {
                "f": "streamhash",
                "hash": STREAM_HASH,
                "fps_mode": "passthrough",
            }
            if method.video_filter:
                pic_kw["vf"] = method.video_filter
            outputs.append(ffmpeg.output(inp["V"], str(aux["src_picture"]), **pic_kw))
        if a:
            aux["src_timeline"] = auxdir / "src.timeline"
            outputs.append(ffmpeg.output(inp["a"], str(aux["src_timeline"]), f="framecrc"))
    else:
        raise ValueError(f"unknown method {method.name!r}")
    return Command(_argv(binary, outputs), aux)


def build_check(
    binary: str, method: Method, dst: Path, auxdir: Path, *, from_stdin: bool = False
) -> Command:
    """The ffmpeg run that reads a finished derivative end to end and writes its fingerprint.

    ``from_stdin`` (re-wrap only): ffmpeg reads the derivative from its stdin (``pipe:0``; a
    faststart MP4 is read front to back, the demuxer taking samples in file order)."""
    if method.name == "rewrap":
        return _rewrap_check(binary, method, dst, auxdir, from_stdin)
    if from_stdin:
        raise ValueError("only a re-wrap's check reads its derivative from stdin")
    import ffmpeg  # ffmpeg-python

    inp = ffmpeg.input(str(dst))
    v, a = method.has_video, method.has_audio
    aux: dict[str, Path] = {}
    outputs: list[Any] = []
    if method.name == "reencode":
        aux["dst_timeline"] = auxdir / "dst.timeline"
        outputs.append(
            ffmpeg.output(
                *_maps(inp, v, a), str(aux["dst_timeline"]), f="framecrc", fps_mode="passthrough"
            )
        )
    elif method.name == "ffv1":
        if v:
            aux["dst_picture"] = auxdir / "dst.picture"
            outputs.append(
                ffmpeg.output(
                    inp["V"],
                    str(aux["dst_picture"]),
                    f="streamhash",
                    hash=STREAM_HASH,
                    fps_mode="passthrough",
                )
            )
        if a:
            aux["dst_timeline"] = auxdir / "dst.timeline"
            outputs.append(ffmpeg.output(inp["a"], str(aux["dst_timeline"]), f="framecrc"))
    else:
        raise ValueError(f"unknown method {method.name!r}")
    return Command(_argv(binary, outputs), aux)


def _filter_path(path: Path) -> str:
    """A file name as a filter option value inside a filtergraph: quoted at the graph level,
    ``\\`` and ``:`` escaped at the option level."""
    text = str(path)
    if "'" in text:
        raise ValueError(f"a quote in a work path cannot go into a filtergraph: {text!r}")
    return "'" + text.replace("\\", "\\\\").replace(":", "\\:") + "'"


def build_quality(binary: str, method: Method, src: Path, dst: Path, auxdir: Path) -> Command:
    """The ffmpeg run that compares the decoded pictures of a re-encode with the original's.

    Both are decoded, brought to the same picture format (the original through the same even-size
    padding as the encoder got) and their timestamps started at zero; ``psnr`` and ``ssim`` write
    one line per frame pair into stats files that ``verify.compare_quality`` reads. Only a
    re-encode with video needs it: a re-wrap copies packets and FFV1 is checked bit-exact.
    """
    if method.name != "reencode" or not method.has_video:
        raise ValueError("only a re-encode with video is compared picture by picture")
    aux = {"quality_psnr": auxdir / "quality.psnr", "quality_ssim": auxdir / "quality.ssim"}
    graph = ";".join(
        [
            "[0:V:0]format=yuv420p,setpts=PTS-STARTPTS,split[d1][d2]",
            "[1:V:0]pad=ceil(iw/2)*2:ceil(ih/2)*2,format=yuv420p,setpts=PTS-STARTPTS,split[s1][s2]",
            f"[d1][s1]psnr=stats_file={_filter_path(aux['quality_psnr'])}[p]",
            f"[d2][s2]ssim=stats_file={_filter_path(aux['quality_ssim'])}[q]",
        ]
    )
    argv = [
        binary,
        *GLOBAL_ARGS,
        "-i",
        str(dst),
        "-i",
        str(src),
        "-filter_complex",
        graph,
        "-map",
        "[p]",
        "-f",
        "null",
        "-",
        "-map",
        "[q]",
        "-f",
        "null",
        "-",
    ]
    return Command(argv, aux)
