#!/usr/bin/env bash
# Installs what the test suite drives (test/support/*.ts starts each of them): a real
# upstream registry (CNCF distribution), real clients (skopeo, containerd/ctr, podman, Docker
# Engine), load generators, nginx as the static-file baseline; then the project's npm dependencies.
# Debian 12, run as root. apt is skipped when every binary is already on PATH.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# nginx lives in /usr/sbin, which a non-login shell may not have on PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

apt_packages=(docker-registry skopeo containerd podman jq busybox-static wrk apache2-utils nginx-light curl openssl)
# Docker Engine goes in on its own, without its recommends (apparmor, cgroupfs-mount, needrestart,
# git...): tests start a private dockerd per test (test/support/dockerd.ts) and need none of them.
apt_packages_no_recommends=(docker.io)
needed_binaries=(docker-registry skopeo containerd ctr podman jq wrk ab nginx curl openssl busybox dockerd docker)

missing=()
for binary in "${needed_binaries[@]}"; do
  command -v "$binary" >/dev/null 2>&1 || missing+=("$binary")
done

# Servers from the packages must not keep running: distribution's init script binds :5000,
# nginx's binds :80, docker's takes /var/run/docker.sock and starts the system containerd.
# Tests start their own instances on loopback ports and private sockets.
stop_package_services() {
  # The init scripts stop only the daemon recorded in their pid file, never a wharf or a
  # test's own registry that happens to use the same binary.
  local service
  for service in docker-registry nginx docker containerd; do
    if [[ -x /etc/init.d/$service ]]; then
      /etc/init.d/"$service" stop >/dev/null 2>&1 || true
    fi
  done
}

if ((${#missing[@]} == 0)); then
  echo "install-test-deps: system packages already present, skipping apt"
else
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: missing ${missing[*]}; run as root (or: apt-get install ${apt_packages[*]};" \
      "apt-get install --no-install-recommends ${apt_packages_no_recommends[*]})" >&2
    exit 1
  fi
  echo "install-test-deps: missing ${missing[*]}; installing with apt"

  # Keep package maintainer scripts from starting services during the install (the standard
  # Debian mechanism: invoke-rc.d asks policy-rc.d, 101 = action forbidden). Only add the
  # file when the machine does not already have one, and take ours away afterwards.
  added_policy_rc_d=false
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    added_policy_rc_d=true
  fi
  remove_policy_rc_d() {
    if [[ $added_policy_rc_d == true ]]; then rm -f /usr/sbin/policy-rc.d; fi
  }
  trap remove_policy_rc_d EXIT

  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade "${apt_packages[@]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade --no-install-recommends \
    "${apt_packages_no_recommends[@]}"

  remove_policy_rc_d
  trap - EXIT
  stop_package_services
fi

# Report anything listening on the ports the packages would use by default.
if command -v ss >/dev/null 2>&1; then
  busy=$(ss -H -ltnp 2>/dev/null | awk '$4 ~ /:(5000|80)$/' || true)
  if [[ -n $busy ]]; then
    if [[ $(id -u) -eq 0 ]]; then
      stop_package_services
      sleep 1
      busy=$(ss -H -ltnp 2>/dev/null | awk '$4 ~ /:(5000|80)$/' || true)
    fi
    if [[ -n $busy ]]; then
      echo "install-test-deps: warning: something still listens on :5000 or :80 (tests use ephemeral ports):" >&2
      echo "$busy" >&2
    fi
  fi
fi

for binary in "${needed_binaries[@]}"; do
  if ! command -v "$binary" >/dev/null 2>&1; then
    echo "install-test-deps: $binary is still missing after apt-get install" >&2
    exit 1
  fi
done

npm ci
