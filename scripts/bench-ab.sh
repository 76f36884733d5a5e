#!/usr/bin/env bash
# Two builds side by side in one run, alternating, so that drift on a shared machine hits both:
# inference per 640x360 frame (bench/upres_bench), the video pipeline end to end
# (bench/video_bench) and a tiled squeeze-excitation model through the CLI. Prints the medians of
# each side and new / base.
# Usage: scripts/bench-ab.sh BASE_BUILD NEW_BUILD      env: ROUNDS (3), THREADS (2), FRAMES (30)
set -euo pipefail
base=$1 new=$2
rounds=${ROUNDS:-3} threads=${THREADS:-2} frames=${FRAMES:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$new/upres" sample -o "$work/clip.mp4" --size 640x360 --frames "$frames" >/dev/null
"$new/upres" sample -o "$work/pic.png" --size 256x192 >/dev/null

# name -> command (BUILD is replaced); each prints one number, lower is better.
declare -A cases=(
  ["compact-x2 f32 ms/frame"]="BUILD/bench/upres_bench upres-compact-x2 --runs 3 --threads $threads | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p'"
  ["animevideov3-x2 f32 ms/frame"]="BUILD/bench/upres_bench realesr-animevideov3-x2 --runs 3 --threads $threads | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p'"
  ["animevideov3-x2 int8 ms/frame"]="BUILD/bench/upres_bench realesr-animevideov3-x2 --precision int8 --runs 3 --threads $threads | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p'"
  ["video f32 s/frame (1/fps)"]="BUILD/bench/video_bench $work/clip.mp4 --frames $frames --model realesr-animevideov3-x2 --threads $threads --precision f32 | sed -n 's/.*e2e_fps=\([0-9.]*\).*/\1/p' | awk '{printf \"%.4f\", 1/\$1}'"
  ["video int8 s/frame (1/fps)"]="BUILD/bench/video_bench $work/clip.mp4 --frames $frames --model realesr-animevideov3-x2 --threads $threads --precision int8 | sed -n 's/.*e2e_fps=\([0-9.]*\).*/\1/p' | awk '{printf \"%.4f\", 1/\$1}'"
  ["realcugan-up2x tiled 64 s/picture"]="s=\$(date +%s.%N); BUILD/upres image $work/pic.png -o $work/out-\$RANDOM.png -m realcugan-up2x-no-denoise --tile 64 --threads $threads >/dev/null; e=\$(date +%s.%N); echo \"\$e - \$s\" | bc -l"
)
declare -A results
for ((r = 1; r <= rounds; r++)); do
  for name in "${!cases[@]}"; do
    for side in base new; do
      dir=$base; [ "$side" = new ] && dir=$new
      v=$(bash -c "${cases[$name]//BUILD/$dir}")
      results["$name|$side"]+="$v "
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '| case | base | new | new / base |\n|---|---|---|---|\n'
for name in "${!cases[@]}"; do
  b=$(median <<<"${results["$name|base"]}") n=$(median <<<"${results["$name|new"]}")
  awk -v name="$name" -v b="$b" -v n="$n" 'BEGIN { printf "| %s | %.4g | %.4g | %.2f |\n", name, b, n, n / b }'
done
