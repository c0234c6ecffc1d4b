# Sourced by scripts/bench.sh and scripts/hostile.sh: waiting for a quiet machine before a
# measurement, since other processes on the two cores distort every figure.

# Busy share (%) of all cores over one second, from /proc/stat.
machine_busy_percent() {
    local a b
    read -r _ u n s i w q sq st _ </proc/stat
    a=$((u + n + s + q + sq + st)) b=$((u + n + s + i + w + q + sq + st))
    sleep 1
    read -r _ u n s i w q sq st _ </proc/stat
    echo $(((u + n + s + q + sq + st - a) * 100 / (u + n + s + i + w + q + sq + st - b + 1)))
}

# Waits (at most QUIET_WAIT_SECS, default 30) until the machine is at most QUIET_PERCENT (8) busy.
wait_quiet() {
    local busy
    for _ in $(seq 1 "${QUIET_WAIT_SECS:-30}"); do
        busy=$(machine_busy_percent)
        [[ $busy -le ${QUIET_PERCENT:-8} ]] && return
    done
    echo "${0##*/}: warning: the machine is still ${busy}% busy; figures will be disturbed" >&2
}
