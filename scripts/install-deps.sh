#!/usr/bin/env bash
# Installs visorlab's build and run dependencies from Debian 12 packages.
# Idempotent: asks apt only for what is missing, so a second run is a no-op.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake g++ clang libclang-rt-14-dev pkg-config git
  # libraries (DESIGN.md "Dependencies")
  libcaf-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev
  libboost-test-dev libboost-dev
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libspdlog-dev
  libbenchmark-dev
  # tools the harness drives or checks against
  fio prometheus openssh-server iproute2 procps python3
  ansible ansible-lint
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root or install them" >&2
  exit 3
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps prometheus and ansible from pulling desktops of extras.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
