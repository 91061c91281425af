#!/usr/bin/env bash
# Makes the small media fixtures of tests/media with the ffmpeg command line (an implementation
# independent of nuri's decoders) and python3: a 1 s 440 Hz tone in every audio format nuri reads,
# a four-colour test pattern in every image format (and one jpg carrying EXIF orientation 6), and
# two short videos whose white bar moves 20 px per second, one with a 440 Hz soundtrack.
# Usage: tests/reference/make_media_fixtures.sh [output dir, default tests/data/media]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-tests/data/media}
mkdir -p "$out"
ff=(ffmpeg -hide_banner -loglevel error -y -bitexact)
tone=(-f lavfi -i "sine=frequency=440:sample_rate=44100:duration=1")
# Stereo copies the sine into both channels at full level (-ac 2 would upmix at -3 dB).
stereo=(-af "pan=stereo|c0=c0|c1=c0")

# Audio: 1 s of a 440 Hz sine (amplitude 1/8), in each container and codec.
"${ff[@]}" "${tone[@]}" "${stereo[@]}" -c:a pcm_s16le "$out/tone_44k_stereo_s16.wav"
"${ff[@]}" "${tone[@]}" -ar 8000 -ac 1 -c:a pcm_u8 "$out/tone_8k_mono_u8.wav"
"${ff[@]}" "${tone[@]}" -ar 48000 -ac 1 -c:a pcm_f32le "$out/tone_48k_f32.wav"
"${ff[@]}" "${tone[@]}" -ac 1 -c:a flac "$out/tone.flac"
"${ff[@]}" "${tone[@]}" "${stereo[@]}" -c:a libvorbis -q:a 2 "$out/tone_vorbis.ogg"
"${ff[@]}" "${tone[@]}" -ac 1 -c:a libmp3lame -b:a 32k "$out/tone.mp3"
"${ff[@]}" "${tone[@]}" -ac 1 -c:a aac -b:a 32k "$out/tone.m4a"
"${ff[@]}" "${tone[@]}" -ac 1 -ar 48000 -c:a libopus -b:a 24k "$out/tone_opus.webm"
"${ff[@]}" "${tone[@]}" "${stereo[@]}" -ar 48000 -c:a libopus -b:a 24k "$out/tone.opus"

# Images: 64x48, quadrants red (top left), green (top right), blue (bottom left), white.
/usr/bin/env python3 - "$out/pattern.rgb" <<'PY'
import sys
w, h = 64, 48
colours = {(0, 0): (255, 0, 0), (0, 1): (0, 255, 0), (1, 0): (0, 0, 255), (1, 1): (255, 255, 255)}
data = bytearray()
for y in range(h):
    for x in range(w):
        data += bytes(colours[(y >= h // 2, x >= w // 2)])
open(sys.argv[1], "wb").write(data)
PY
raw=(-f rawvideo -pix_fmt rgb24 -s 64x48 -i "$out/pattern.rgb")
"${ff[@]}" "${raw[@]}" -frames:v 1 "$out/pattern.png"
"${ff[@]}" "${raw[@]}" -frames:v 1 -pix_fmt gray "$out/pattern_gray.png"
"${ff[@]}" "${raw[@]}" -frames:v 1 -pix_fmt rgba "$out/pattern_rgba.png"
"${ff[@]}" "${raw[@]}" -frames:v 1 -pix_fmt yuvj444p -q:v 2 "$out/pattern.jpg"
"${ff[@]}" "${raw[@]}" -frames:v 1 -c:v libwebp -lossless 1 "$out/pattern.webp"
"${ff[@]}" "${raw[@]}" -frames:v 1 -pix_fmt bgr24 "$out/pattern.bmp"
rm "$out/pattern.rgb"

# The jpg again with an EXIF APP1 segment (little-endian TIFF, one IFD entry: Orientation = 6,
# "rotate 90 degrees clockwise to display") inserted after the SOI marker.
/usr/bin/env python3 - "$out/pattern.jpg" "$out/pattern_exif6.jpg" <<'PY'
import struct, sys
jpg = open(sys.argv[1], "rb").read()
assert jpg[:2] == b"\xff\xd8"
tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
tiff += struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
payload = b"Exif\x00\x00" + tiff
app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
open(sys.argv[2], "wb").write(jpg[:2] + app1 + jpg[2:])
PY

# Videos: 3 s at 10 fps, 64x48 black with a 4 px white bar whose left edge is at x = 2 * frame
# (20 px per second), so each frame's content tells its time.
/usr/bin/env python3 - "$out/bar.rgb" <<'PY'
import sys
w, h, frames = 64, 48, 30
data = bytearray()
for i in range(frames):
    for y in range(h):
        for x in range(w):
            data += b"\xff\xff\xff" if 2 * i <= x < 2 * i + 4 else b"\x00\x00\x00"
open(sys.argv[1], "wb").write(data)
PY
bar=(-f rawvideo -pix_fmt rgb24 -s 64x48 -r 10 -i "$out/bar.rgb")
"${ff[@]}" "${bar[@]}" -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=3" \
  -c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p -c:a aac -b:a 32k -ac 1 -shortest \
  "$out/bar_tone.mp4"
"${ff[@]}" "${bar[@]}" -c:v libvpx-vp9 -crf 20 -b:v 0 -pix_fmt yuv420p "$out/bar_silent.webm"
rm "$out/bar.rgb"
