#!/usr/bin/env bash
# Build the Kubeloop images on a machine that reaches no container registry (docs/images.md).
#
#   hack/images.sh [build]   build kubeloop-runtime:dev and kubeloop-operator:dev when their inputs
#                            changed (a stamp per image); otherwise do nothing
#   hack/images.sh load [TAG...]
#                            build, then load both (or the given tags) into the local node
#                            (hack/devcluster.py load)
#   hack/images.sh down      stop an engine left running with KUBELOOP_DOCKER_KEEP=1
#   hack/images.sh env       print DOCKER_HOST for this cache's engine (when it runs)
#
# A Docker engine that already answers ($DOCKER_HOST, or the default socket) is used as it is.
# Otherwise the script starts Debian's dockerd with everything under $KUBELOOP_CACHE/docker and no
# host networking (no bridge, no iptables rules; builds use the host network), and stops it when
# done, unless KUBELOOP_DOCKER_KEEP=1. Nothing can be pulled, so the images are built FROM a local
# base: Debian bookworm bootstrapped by debootstrap (once; its tarball is cached) and imported.
# The local build also trusts the host's CA bundle in the build stage only (pip behind the egress
# proxy); the Dockerfiles never depend on it, so a plain `docker build` works anywhere.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KUBELOOP_CACHE:-$REPO/.cache/kubeloop}
# The engine's data and the base tarball; KUBELOOP_IMAGES_CACHE lets checkouts share one (the
# node that `load` feeds stays the one of KUBELOOP_CACHE).
IMAGES_CACHE=${KUBELOOP_IMAGES_CACHE:-$CACHE}
ENGINE_DIR=$IMAGES_CACHE/docker
IMAGES_DIR=$IMAGES_CACHE/images
SOCKET=$ENGINE_DIR/run/docker.sock
PIDFILE=$ENGINE_DIR/run/dockerd.pid
# Debian's CLI builds with the engine's built-in BuildKit (DOCKER_BUILDKIT=1); a newer CLI without
# the buildx plugin cannot, so prefer the CLI that matches Debian's dockerd.
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker || echo docker)}
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-1}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=python3

SUITE=bookworm
MIRROR=${KUBELOOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What both Dockerfiles need from their base: python3 with venv (ensurepip), CA certificates for
# pip and for https:// and s3:// URIs at run time; minbase already has passwd (useradd).
BASE_PACKAGES=python3,python3-venv,ca-certificates
BASE_IMAGE=kubeloop-base:$SUITE
BUILD_IMAGE=kubeloop-build:$SUITE
HOST_CA=/etc/ssl/certs/ca-certificates.crt
# image tag, Dockerfile, package folder (the image's own sources)
IMAGES=(
  "kubeloop-runtime:dev serving_image/Dockerfile serving_image/kubeloop_runtime"
  "kubeloop-operator:dev operator/Dockerfile operator/kubeloop"
)

log() { printf 'images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

engine_answers() { "$DOCKER" info >/dev/null 2>&1; }

STARTED_ENGINE=0

# Use a running engine, else start ours. Sets DOCKER_HOST for everything after.
ensure_engine() {
  if [[ -n ${DOCKER_HOST:-} ]]; then
    engine_answers || die "DOCKER_HOST=$DOCKER_HOST does not answer"
    return
  fi
  export DOCKER_HOST=unix://$SOCKET
  engine_answers && return
  unset DOCKER_HOST
  if [[ -S /var/run/docker.sock ]] && engine_answers; then
    return
  fi
  export DOCKER_HOST=unix://$SOCKET
  start_engine
}

start_engine() {
  command -v dockerd >/dev/null || die "no Docker engine answers and dockerd is not installed (apt-get install docker.io)"
  # A killed run may leave a pid file or socket behind; a live dockerd of ours would have answered.
  stop_engine quiet
  mkdir -p "$ENGINE_DIR/data" "$ENGINE_DIR/run"
  # Our own daemon.json, so the host's /etc/docker/daemon.json changes nothing here; it also keeps
  # the engine's identity key out of /etc/docker.
  printf '{"deprecated-key-path": "%s"}\n' "$ENGINE_DIR/key.json" >"$ENGINE_DIR/daemon.json"
  log "starting dockerd (data under $ENGINE_DIR, log $ENGINE_DIR/dockerd.log)"
  # setsid: its own process group, so stop_engine can end dockerd with its managed containerd.
  setsid dockerd \
    --config-file="$ENGINE_DIR/daemon.json" \
    --data-root="$ENGINE_DIR/data" \
    --exec-root="$ENGINE_DIR/run" \
    --pidfile="$PIDFILE" \
    --host="unix://$SOCKET" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false \
    --exec-opt native.cgroupdriver=cgroupfs \
    --storage-driver=overlay2 \
    >"$ENGINE_DIR/dockerd.log" 2>&1 </dev/null &
  STARTED_ENGINE=1
  local deadline=$((SECONDS + 60))
  until engine_answers; do
    if ((SECONDS > deadline)) || ! kill -0 $! 2>/dev/null; then
      tail -n 20 "$ENGINE_DIR/dockerd.log" >&2 || true
      die "dockerd did not come up"
    fi
    sleep 0.2
  done
}

# Stop the dockerd of this cache (SIGTERM, then SIGKILL after 30 s) and wait until it is gone.
stop_engine() {
  local quiet=${1:-}
  [[ -f $PIDFILE ]] || { [[ -n $quiet ]] || log "no engine of ours runs"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
    [[ -n $quiet ]] || log "stopping dockerd ($pid)"
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS > deadline)); then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
      fi
      sleep 0.2
    done
  fi
  # dockerd stops the containerd it manages; after a SIGKILL (or a killed run) that one lingers.
  local containerd_pidfile=$ENGINE_DIR/run/containerd/containerd.pid containerd_pid
  containerd_pid=$(cat "$containerd_pidfile" 2>/dev/null || true)
  if [[ $containerd_pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$containerd_pid/comm" 2>/dev/null) == containerd ]] &&
    grep -qF "$ENGINE_DIR/run/containerd" "/proc/$containerd_pid/cmdline" 2>/dev/null; then
    kill -KILL "$containerd_pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE" "$SOCKET" "$containerd_pidfile"
}

finish() {
  if ((STARTED_ENGINE)) && [[ ${KUBELOOP_DOCKER_KEEP:-} != 1 ]]; then
    stop_engine quiet
  fi
}

# The root filesystem of the base image, bootstrapped once and cached as a tarball.
base_tarball() {
  # Named by what makes it: a change to the packages or to this function gives a new tarball.
  local tarball
  tarball=$IMAGES_DIR/base-$SUITE-$({ declare -f base_tarball; echo "$BASE_PACKAGES $MIRROR"; } | sha256sum | cut -c1-12).tar
  if [[ ! -s $tarball ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    local root=$IMAGES_DIR/rootfs-$SUITE
    rm -rf "$root" "$IMAGES_DIR"/base-"$SUITE"-*.tar
    log "debootstrap --variant=minbase $SUITE with $BASE_PACKAGES (about 2 minutes, once)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$root" "$MIRROR" \
      >"$IMAGES_DIR/debootstrap.log" 2>&1 ||
      { tail -n 20 "$IMAGES_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
    # Downloaded packages, index files, manuals and translations are of no use in an image (about
    # 50 MB); the licence notices stay. The dpkg excludes keep later apt installs as lean.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
      "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    printf 'path-exclude /usr/share/%s/*\n' man info locale doc >"$root/etc/dpkg/dpkg.cfg.d/kubeloop-excludes"
    echo 'path-include /usr/share/doc/*/copyright' >>"$root/etc/dpkg/dpkg.cfg.d/kubeloop-excludes"
    tar --numeric-owner -C "$root" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$root"
  fi
  echo "$tarball"
}

image_id() { "$DOCKER" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# kubeloop-base: the bootstrapped root filesystem. kubeloop-build: that plus the host's CA bundle
# as pip's, used only as the build stage (BUILD_IMAGE), so the final images never carry it.
ensure_base_images() {
  local tarball
  tarball=$(base_tarball)
  local label="kubeloop.base.tarball=$(basename "$tarball")"
  if [[ $("$DOCKER" image inspect --format '{{index .Config.Labels "kubeloop.base.tarball"}}' "$BASE_IMAGE" 2>/dev/null) != "$(basename "$tarball")" ]]; then
    log "importing $tarball as $BASE_IMAGE"
    "$DOCKER" import \
      --change "LABEL $label" \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/bash"]' \
      "$tarball" "$BASE_IMAGE" >/dev/null
  fi
  local context=$IMAGES_DIR/build-image
  mkdir -p "$context"
  cp "$HOST_CA" "$context/host-ca.crt"
  cat >"$context/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY host-ca.crt /usr/local/share/kubeloop-build/host-ca.crt
ENV PIP_CERT=/usr/local/share/kubeloop-build/host-ca.crt
EOF
  "$DOCKER" build --quiet --network=host -t "$BUILD_IMAGE" "$context" >/dev/null
}

# Everything an image is built from: its Dockerfile and ignore files, the packaging files, its
# package's sources, this script, and the base images it starts from.
image_inputs_digest() {
  local dockerfile=$1 package=$2
  {
    (cd "$REPO" && find "$dockerfile" "$(dirname "$dockerfile")/.dockerignore" .dockerignore \
      pyproject.toml README.md hack/images.sh "$package" \
      -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
    image_id "$BASE_IMAGE"
    image_id "$BUILD_IMAGE"
  } | sha256sum | cut -c1-64
}

build_images() {
  mkdir -p "$IMAGES_DIR"
  ensure_engine
  ensure_base_images
  local entry tag dockerfile package stamp digest start
  for entry in "${IMAGES[@]}"; do
    read -r tag dockerfile package <<<"$entry"
    stamp=$IMAGES_DIR/${tag//[:\/]/_}.stamp
    digest=$(image_inputs_digest "$dockerfile" "$package")
    if [[ -n $(image_id "$tag") && -f $stamp && $(cat "$stamp") == "$digest" ]]; then
      log "$tag is up to date"
      continue
    fi
    log "building $tag from $dockerfile"
    start=$SECONDS
    "$DOCKER" build --network=host \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "BUILD_IMAGE=$BUILD_IMAGE" \
      -f "$REPO/$dockerfile" -t "$tag" "$REPO" >"$IMAGES_DIR/build-${tag//[:\/]/_}.log" 2>&1 ||
      { tail -n 30 "$IMAGES_DIR/build-${tag//[:\/]/_}.log" >&2; die "building $tag failed"; }
    echo "$digest" >"$stamp"
    log "built $tag in $((SECONDS - start)) s, $("$DOCKER" image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
  done
  # Dangling layers of replaced builds would fill the cache folder over time.
  "$DOCKER" image prune --force >/dev/null
}

# Load the given tags (default: both images) into the node; the engine must run for docker save.
load_images() {
  build_images
  local tags=("$@") entry
  if ((${#tags[@]} == 0)); then
    for entry in "${IMAGES[@]}"; do tags+=("${entry%% *}"); done
  fi
  log "loading ${tags[*]} into the node"
  "$PYTHON" "$REPO/hack/devcluster.py" load "${tags[@]}"
}

main() {
  local command=${1:-build}
  case $command in
    build | load)
      mkdir -p "$IMAGES_DIR"
      # One run at a time per cache: two would start two engines on one data root.
      exec 9>"$IMAGES_DIR/.lock"
      flock 9
      trap finish EXIT
      shift || true
      if [[ $command == build ]]; then build_images; else load_images "$@"; fi
      ;;
    down) stop_engine ;;
    env) [[ -S $SOCKET ]] && echo "export DOCKER_HOST=unix://$SOCKET" ;;
    *) die "usage: hack/images.sh [build|load|down|env]" ;;
  esac
}

# One line: bash reads a script as it runs it, so an edit during a run cannot be half-executed.
main "$@"; exit $?
