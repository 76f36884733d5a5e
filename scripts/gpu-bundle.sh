#!/usr/bin/env bash
# Packs what the NVIDIA benchmark (scripts/bench-gpu.sh) needs, for a lent GPU machine that has a
# driver but none of our libraries and no network: upres, upres_bench and psnr_pair with every
# shared library they load (glibc's loader included, so the host's glibc version does not
# matter), the two benchmark models, the realesrgan-ncnn-vulkan peer and the PyTorch benchmark
# with our model's definition. One run may carry 64 MiB, so it makes three archives:
#   BUILD/gpu-bundle.tar.xz          everything the model-only, peer and PyTorch rows need (18 MiB);
#   BUILD/gpu-bundle-media-{1,2}.tar.xz  the rest of upres's libraries (FFmpeg's tree, ~34 MiB
#                                    each), for the end-to-end rows.
# Carry media-1 in one call (`true` as its command), then the bundle and media-2 in the next,
# which runs scripts/bench-gpu.sh: ignored files stay on the device while it is warm.
# Usage: scripts/gpu-bundle.sh BUILD     (after a build; the peer comes from scripts/bench-vulkan.sh)
set -euo pipefail
build=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
bundle=$build/gpu-bundle
media=$build/gpu-bundle-media
rm -rf "$bundle" "$media" "$build"/gpu-bundle*.tar.xz
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/models" "$bundle/peer/models" "$media/1/gpu-bundle/lib" \
  "$media/2/gpu-bundle/lib"

libraries() {  # every shared library the programs load, glibc's loader included
  for exe in "$@"; do ldd "$exe" | awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}'; done | sort -u
}
peer=$build/peers/waifu2x-1.6.5/package/real-esrgan/realesrgan-ncnn-vulkan
[ -x "$peer" ] || peer=""
cp "$build/upres" "$build/bench/upres_bench" "$build/bench/psnr_pair" "$bundle/bin/"
# The programs' libraries and the whole glibc family: a driver loaded later (the NVIDIA Vulkan
# ICD) must find this glibc's libdl, librt and libpthread, not the host's.
glibc=$(dirname "$(ldd "$build/upres" | awk '/libc.so.6/ {print $3}')")
{
  libraries "$build/bench/upres_bench" "$build/bench/psnr_pair" ${peer:+"$peer"}
  for l in libc.so.6 libm.so.6 libmvec.so.1 libdl.so.2 librt.so.1 libpthread.so.0 libresolv.so.2 libutil.so.1; do
    [ -e "$glibc/$l" ] && echo "$glibc/$l"
  done
} | sort -u | while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
# upres's other libraries, largest first, each to the lighter of the two media archives.
sizes=(0 0 0)
while read -r bytes lib; do
  [ -e "$bundle/lib/$(basename "$lib")" ] && continue
  part=1
  [ "${sizes[2]}" -lt "${sizes[1]}" ] && part=2
  cp -L "$lib" "$media/$part/gpu-bundle/lib/"
  sizes[part]=$((sizes[part] + bytes))
done < <(libraries "$build/upres" | xargs stat -L -c '%s %n' | sort -rn)

zoo=${UPRES_MODEL_DIR:-$HOME/.cache/upres/models}
cp "$repo/models/upres-compact-x2.param" "$repo/models/upres-compact-x2.bin" "$bundle/models/"
cp "$zoo/waifu2x@1.6.5/package/real-esrgan/models/realesr-animevideov3-x2."{param,bin} "$bundle/models/"

if [ -n "$peer" ]; then
  cp "$peer" "$bundle/peer/"
  cp "$bundle"/models/* "$bundle/peer/models/"
else
  echo "no realesrgan-ncnn-vulkan in $build/peers (scripts/bench-vulkan.sh fetches it); the bundle goes without" >&2
fi

cp "$repo/scripts/bench-gpu.sh" "$repo/scripts/bench-torch.py" "$repo/training/model.py" "$bundle/"
tar -C "$build" -cJf "$build/gpu-bundle.tar.xz" gpu-bundle
for part in 1 2; do XZ_OPT=-9 tar -C "$media/$part" -cJf "$build/gpu-bundle-media-$part.tar.xz" gpu-bundle; done
rm -rf "$bundle" "$media"
ls -l "$build"/gpu-bundle*.tar.xz
