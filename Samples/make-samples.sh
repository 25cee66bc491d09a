#!/usr/bin/env bash
# Regenerates the sample sources in this folder. Needs ImageMagick 6 (Debian: imagemagick)
# and the DejaVu fonts (fonts-dejavu-core). The outputs are committed; run this only to change them.
set -euo pipefail
cd "$(dirname "$0")"
IM=/usr/bin/convert
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf

# A photo-like landscape: sky gradient, sun, hills, a house, text.
scene() { # width height out
  local w=$1 h=$2 out=$3
  $IM -size "${w}x${h}" gradient:'#3b7bd4-#f6d7a7' \
    -fill '#ffd23f' -draw "circle $((w*3/4)),$((h/4)) $((w*3/4+h/10)),$((h/4))" \
    -fill '#2f6b2f' -draw "ellipse $((w/4)),$h $((w/2)),$((h*2/5)) 180,360" \
    -fill '#3f8a3a' -draw "ellipse $((w*3/4)),$h $((w/2)),$((h/3)) 180,360" \
    -fill '#b5452f' -draw "rectangle $((w/5)),$((h*11/20)) $((w/5+w/8)),$((h*3/4))" \
    -fill '#5a2a1e' -draw "polygon $((w/5-w/40)),$((h*11/20)) $((w/5+w/16)),$((h*9/20)) $((w/5+w/8+w/40)),$((h*11/20))" \
    -font "$FONT" -pointsize $((h/12)) -fill white -stroke '#00000080' -gravity northwest \
    -annotate +$((w/20))+$((h/20)) 'Derive sample' \
    -quality 85 -sampling-factor 4:2:0 -strip "$out"
}
scene 1200 800 landscape.jpg
scene 800 1200 portrait.jpg

# A logo with transparency: a coloured ring and text on nothing.
$IM -size 400x400 xc:none -fill '#e4572e' -draw 'circle 200,200 200,40' \
  -fill none -stroke '#17bebb' -strokewidth 24 -draw 'circle 200,200 200,90' \
  -stroke none -fill white -font "$FONT" -pointsize 64 -gravity center -annotate +0+0 'D' \
  -strip logo-alpha.png

# An animated GIF: 8 frames of a square turning around a dot.
frames=()
for i in 0 1 2 3 4 5 6 7; do
  $IM -size 160x120 xc:'#fdf6e3' -fill '#268bd2' \
    -draw "translate 80,60 rotate $((i*45)) rectangle -30,-30 30,30" \
    -fill '#dc322f' -draw 'circle 80,60 80,66' "frame-$i.gif"
  frames+=("frame-$i.gif")
done
$IM -delay 10 -loop 0 "${frames[@]}" -layers Optimize spinner.gif
rm -f "${frames[@]}"

# JPEGs that carry EXIF orientations 1-8: the stored pixels are the upright picture put through
# the inverse transform, so every one of them displays as the same upright picture.
$IM -size 300x200 gradient:'#ffffff-#c8c8c8' -fill '#d62828' -draw 'rectangle 0,0 99,99' \
  -fill '#003049' -font "$FONT" -pointsize 90 -gravity center -annotate +40+10 'F' upright.png
ops=("" "" "-flop" "-rotate 180" "-flip" "-transpose" "-rotate 270" "-transverse" "-rotate 90")
names=("" TopLeft TopRight BottomRight BottomLeft LeftTop RightTop RightBottom LeftBottom)
for n in 1 2 3 4 5 6 7 8; do
  # shellcheck disable=SC2086
  $IM upright.png ${ops[$n]} -quality 90 -strip "orientation-$n.jpg"
  # ImageMagick writes no EXIF block for -orient on a stripped JPEG: insert a minimal APP1
  # (big-endian TIFF header, one IFD0 entry: Orientation, SHORT, 1 value) right after SOI.
  python3 - "orientation-$n.jpg" "$n" <<'PY'
import struct, sys
path, value = sys.argv[1], int(sys.argv[2])
data = open(path, 'rb').read()
tiff = b'MM\x00*' + struct.pack('>I', 8) + struct.pack('>H', 1) \
     + struct.pack('>HHIHH', 0x0112, 3, 1, value, 0) + struct.pack('>I', 0)
payload = b'Exif\x00\x00' + tiff
app1 = b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload
open(path, 'wb').write(data[:2] + app1 + data[2:])
PY
done
rm -f upright.png

# A CMYK JPEG (no profile: decoders fall back to a generic CMYK profile).
$IM landscape.jpg -resize 600x400 -colorspace CMYK -quality 85 cmyk.jpg
