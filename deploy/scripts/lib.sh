# shellcheck shell=bash
# Shared helpers for deploy/scripts/*.sh (sourced, not executed).
# Provides ROOT, the .state layout, pid-file handling that only ever touches processes this
# repo started, and deadline-based polling helpers (no fixed sleeps for readiness).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="$ROOT/.state"
LOGS="$STATE/logs"
RUN="$STATE/run"
# shellcheck disable=SC2034  # used by the scripts that source this file
VENV_PY="$ROOT/.venv/bin/python"
mkdir -p "$LOGS" "$RUN"

log() { printf '%s: %s\n' "${LOG_PREFIX:-deploy}" "$*"; }
die() { printf '%s: ERROR: %s\n' "${LOG_PREFIX:-deploy}" "$*" >&2; exit 1; }

# apt_ensure PKG... : install the Debian packages that are missing; apt-get update only if needed.
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep package maintainer scripts from auto-starting daemons (postgresql, prometheus):
    # our scripts start exactly what they need. Uses Debian's policy-rc.d hook if none exists.
    local policy=/usr/sbin/policy-rc.d added=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1
    fi
    local rc=0
    { apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
    ((added)) && rm -f "$policy"
    return "$rc"
}

# pid_of NAME : print the pid recorded in .state/run/NAME.pid if that process is alive and its
# command line still contains the string MATCH (guards against a recycled pid). Else return 1.
pid_of() {
    local name="$1" match="$2" pidfile="$RUN/$1.pid" pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$match" || return 1
    echo "$pid"
}

# spawn NAME CMD... : run CMD detached (own session, no stdin), log to .state/logs/NAME.log,
# record its pid in .state/run/NAME.pid.
spawn() {
    local name="$1"; shift
    local logfile="$LOGS/$name.log"
    printf '\n===== %s starting %s =====\n' "$(date -Is)" "$name" >>"$logfile"
    # Background jobs of a non-interactive shell are not process-group leaders, so setsid
    # calls setsid(2) in place without forking and $! is the pid of CMD itself.
    nohup setsid "$@" >>"$logfile" 2>&1 </dev/null &
    echo "$!" >"$RUN/$name.pid"
}

# stop_pid NAME MATCH [GRACE_SECONDS] : SIGTERM our recorded process, wait, then SIGKILL.
stop_pid() {
    local name="$1" match="$2" grace="${3:-30}" pid deadline
    if ! pid="$(pid_of "$name" "$match")"; then
        rm -f "$RUN/$name.pid"
        log "$name not running"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not exit within ${grace}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$RUN/$name.pid"
    log "$name stopped"
}

# port_open HOST PORT : true if a TCP connection succeeds.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# http_ok URL : true if URL answers 2xx.
http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# wait_until TIMEOUT_SECONDS DESCRIPTION CMD... : poll CMD until it succeeds or the deadline passes.
wait_until() {
    local timeout="$1" what="$2"; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || { log "timed out after ${timeout}s waiting for $what"; return 1; }
        sleep 0.25
    done
}

# require_venv : create/refresh .venv if needed (cheap when up to date).
require_venv() { "$ROOT/deploy/scripts/venv.sh" >/dev/null; }

# Development bearer tokens: hashed in tokens.yaml (read by the services), clear in
# dev-tokens.yaml (for curl, the simulator and every read role: facilities, sanitation-city,
# ops, analyst, prometheus) and the scraper's alone in prometheus.token (Prometheus'
# credentials_file). Generated once; later runs keep every token and add missing principals.
dev_tokens() {
    require_venv
    (cd "$ROOT" && "$VENV_PY" -m shared.auth generate \
        --out "$STATE/auth/tokens.yaml" --clear-out "$STATE/auth/dev-tokens.yaml" \
        --metrics-credential-out "$STATE/auth/prometheus.token" >/dev/null)
}

# --- One start/stop/status skeleton for the daemons these scripts run ---------------------------

# daemon_start NAME MATCH PORT READY_FN SPAWN_FN [TIMEOUT] : start NAME unless our process (pid
# file, command line containing MATCH) runs and READY_FN succeeds. A port held by a process we
# did not start is refused (with DAEMON_FOREIGN_OK=1 it is used if READY_FN succeeds). SPAWN_FN
# starts it (with spawn NAME ...); then wait until READY_FN (TIMEOUT s, default 60), printing the
# tail of its log and exiting 1 on a timeout.
daemon_start() {
    local name="$1" match="$2" port="$3" ready="$4" spawn_fn="$5" timeout="${6:-60}" pid=""
    if pid="$(pid_of "$name" "$match")" && "$ready"; then
        log "already running (pid $pid)"
        return 0
    fi
    if [[ -z "$pid" ]]; then
        if port_open 127.0.0.1 "$port"; then
            if [[ "${DAEMON_FOREIGN_OK:-0}" == 1 ]] && "$ready"; then
                log "a $name this checkout did not start is serving 127.0.0.1:$port; using it"
                return 0
            fi
            die "port $port is taken by a process we did not start"
        fi
        log "starting, log: $LOGS/$name.log"
        "$spawn_fn"
        pid="$(cat "$RUN/$name.pid")"
    fi
    if ! wait_until "$timeout" "$name ready" "$ready"; then
        tail -n 30 "$LOGS/$name.log" >&2
        exit 1
    fi
    log "ready on 127.0.0.1:$port (pid $pid)"
}

# daemon_status NAME MATCH [DETAIL] : print "NAME: running (pid P DETAIL)" or "NAME: stopped".
daemon_status() {
    local pid
    if pid="$(pid_of "$1" "$2")"; then echo "$1: running (pid $pid${3:+, $3})"; else echo "$1: stopped"; fi
}

# dispatch "CMD..." ARG... : run the function named by the first ARG if it is one of CMD (the
# rest of ARG as its arguments); else print the usage and exit 2.
dispatch() {
    local commands="$1" cmd="${2:-}"
    if [[ -n "$cmd" && " $commands " == *" $cmd "* ]]; then
        shift 2
        "$cmd" "$@"
    else
        echo "usage: $0 {${commands// /|}}" >&2
        exit 2
    fi
}
