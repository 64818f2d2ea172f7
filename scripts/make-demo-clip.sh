#!/usr/bin/env bash
# Regenerates the built-in demo clip (crates/camrelay/assets/demo.{h264,aac}) and the offline slates
# (H.264, H.265, AV1, VP9; the AV1/VP9 ones need an ffmpeg with libaom-av1 and libvpx-vp9).
# 8 seconds so that 25 fps video (200 frames) and 48 kHz AAC (375 frames of 1024 samples) both loop
# on a frame boundary; one keyframe per second; a visible frame counter and clock; a beep every second.
set -euo pipefail
out=${1:-crates/camrelay/assets}
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc=size=640x360:rate=25:duration=8,drawtext=text='camrelay demo %{pts\:hms}':fontsize=28:fontcolor=white:box=1:boxcolor=black@0.6:x=(w-tw)/2:y=h-60" \
  -c:v libx264 -profile:v main -preset veryslow -tune animation -pix_fmt yuv420p -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 \
  -b:v 250k -maxrate 400k -bufsize 400k -x264-params aud=1:repeat-headers=1 \
  -bsf:v h264_mp4toannexb -f h264 "$out/demo.h264"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "sine=frequency=880:beep_factor=4:sample_rate=48000:duration=8.1" \
  -ac 1 -c:a aac -b:a 48k -f adts "$out/demo.aac"
ls -l "$out"/demo.*

# The offline slate of MediaMTX's `alwaysAvailable` paths (crates/camrelay/assets/offline.{h264,h265}):
# one second, one keyframe, 640x360, "camera offline" on dark grey; access units delimited by AUDs.
slate="color=c=0x202020:s=640x360:r=25,drawtext=text='camera offline':fontcolor=0xc0c0c0:fontsize=40:x=(w-tw)/2:y=(h-th)/2"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$slate" -t 1 \
  -c:v libx264 -preset veryslow -profile:v baseline -g 25 -bf 0 -pix_fmt yuv420p -x264-params aud=1 \
  -f h264 "$out/offline.h264"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$slate" -t 1 \
  -c:v libx265 -preset slow -g 25 -bf 0 -pix_fmt yuv420p \
  -x265-params aud=1:keyint=25:min-keyint=25:bframes=0:log-level=error -f hevc "$out/offline.h265"
ls -l "$out"/offline.*

# The AV1 and VP9 slates (crates/camrelay/assets/offline.{av1,vp9}.ivf): the same picture, one second,
# one keyframe then 24 inter frames, every frame shown (realtime modes: no hidden or alt-ref frames), in
# IVF (a 32-byte file header, then a 12-byte header per frame: AV1 temporal units with their sequence
# header on the keyframe; VP9 frames). About 3 KB each.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$slate" -t 1 \
  -c:v libaom-av1 -usage realtime -cpu-used 4 -row-mt 0 -lag-in-frames 0 -g 25 -crf 40 -b:v 0 -pix_fmt yuv420p \
  -f ivf "$out/offline.av1.ivf"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$slate" -t 1 \
  -c:v libvpx-vp9 -deadline good -cpu-used 2 -auto-alt-ref 0 -lag-in-frames 0 -g 25 -crf 40 -b:v 0 -pix_fmt yuv420p \
  -f ivf "$out/offline.vp9.ivf"
ls -l "$out"/offline.*.ivf
