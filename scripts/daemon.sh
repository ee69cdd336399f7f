# shellcheck shell=bash
# A private emotiond for the scripts (sourced, not run): one at a time, stopped on any exit of the
# script that sources this (a failing command aborts it under set -e).
#
#   daemon_start DIR [emotiond options...]   start it on ipc://DIR/emotiond.sock, log DIR/emotiond.log;
#                                            returns once it answers, or exits 1 with its log
#   daemon_stop                              SIGTERM, wait for it (its exit status), remove DIR
# After daemon_start, $daemon_endpoint is the endpoint.

daemon_pid="" daemon_dir="" daemon_endpoint=""

daemon_cleanup() {
        if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
        if [ -n "$daemon_dir" ]; then rm -rf "$daemon_dir"; fi
        return 0
}
trap daemon_cleanup EXIT

daemon_start() {
        daemon_dir=$1
        shift
        daemon_endpoint="ipc://$daemon_dir/emotiond.sock"
        build/bin/emotiond --endpoint "$daemon_endpoint" "$@" 2>"$daemon_dir/emotiond.log" &
        daemon_pid=$!
        for _ in $(seq 100); do
                build/bin/emotion health --server "$daemon_endpoint" --timeout 200 --attempts 1 >/dev/null 2>&1 && return 0
                kill -0 "$daemon_pid" 2>/dev/null || break
                sleep 0.1
        done
        echo "$0: emotiond did not answer on $daemon_endpoint; its log:" >&2
        cat "$daemon_dir/emotiond.log" >&2
        exit 1
}

daemon_stop() {
        kill -TERM "$daemon_pid"
        wait "$daemon_pid"
        rm -rf "$daemon_dir"
        daemon_pid="" daemon_dir="" daemon_endpoint=""
}
