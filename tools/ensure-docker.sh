#!/usr/bin/env bash
# Make sure a Docker engine answers, so efflab's docker tests and runs can use it.
#
# Idempotent: does nothing when `docker info` already answers. Otherwise installs
# docker.io + debootstrap from Debian (apt-get, only when missing), starts dockerd in
# the background (log: $EFFLAB_DOCKERD_LOG, default /tmp/efflab-dockerd.log) and waits
# up to $EFFLAB_DOCKER_WAIT_S (default 60) seconds for it to answer.
# Exits 0 when an engine answers, non-zero with the reason on stderr when impossible.
set -u

WAIT_S="${EFFLAB_DOCKER_WAIT_S:-60}"
LOG="${EFFLAB_DOCKERD_LOG:-/tmp/efflab-dockerd.log}"

say() { echo "ensure-docker: $*" >&2; }
fail() { say "$*"; exit 1; }

answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && answers; then
    say "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    fi
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] && [ -z "$SUDO" ]; then
        fail "missing ${missing[*]} and not root (no password-less sudo): install them, e.g. 'sudo apt-get install -y ${missing[*]}'"
    fi
    command -v apt-get >/dev/null 2>&1 || fail "missing ${missing[*]} and no apt-get to install them with"
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed; trying the cached lists"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || fail "apt-get install ${missing[*]} failed (no network to the Debian mirror?)"
fi

if ! answers; then
    if pgrep -x dockerd >/dev/null 2>&1; then
        say "dockerd is running but not answering yet; waiting"
    else
        if [ "$(id -u)" != 0 ] && [ -z "$SUDO" ]; then
            fail "no Docker engine answers and dockerd needs root: start it (sudo dockerd &) or add this user to the docker group"
        fi
        say "starting dockerd in the background (log: $LOG)"
        # setsid: the daemon must outlive this script and the CI step that called it
        $SUDO setsid dockerd >"$LOG" 2>&1 </dev/null &
    fi
    for _ in $(seq "$WAIT_S"); do
        answers && break
        sleep 1
    done
fi

if answers; then
    say "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
fi
if [ -f "$LOG" ]; then
    say "last lines of $LOG:"
    tail -n 15 "$LOG" >&2
fi
fail "no Docker engine answered within ${WAIT_S}s (see the log above)"
