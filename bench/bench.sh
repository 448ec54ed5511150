#!/usr/bin/env bash
# blkrep benchmark: blkrep serve vs. three anchor NBD servers (nbdkit file plugin,
# nbd-server, qemu-nbd), all serving the same page-cached 1 GiB file on 127.0.0.1 and
# driven by fio's nbd engine.  Not a test: it prints numbers, it does not pass or fail
# on them.  See bench/README.md.
#
# Environment (all optional):
#   BENCH_SECONDS   seconds per fio job                      (default 5)
#   BENCH_ROUNDS    rounds; medians are taken over them      (default 3)
#   BENCH_SERVERS   which servers, in this order             (default "blkrep nbdkit nbd-server qemu-nbd")
#   BENCH_WORKLOADS which workloads                          (default "seqwrite-1m-qd8 randwrite-4k-qd32 randwrite-4k-qd1 randread-4k-qd32")
#   BENCH_PORT      first TCP port; server i uses PORT+i     (default 10950)
#   BENCH_SIZE_MB   size of the backing file in MiB          (default 1024)
#   BENCH_CACHE     where the backing file lives             (default <repo>/.cache/bench)
#   BENCH_OUT       where results go                         (default <repo>/bench/results)
#   BLKREP          the blkrep binary                        (default <repo>/blkrep)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$REPO/bench"

SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
read -r -a SERVERS <<<"${BENCH_SERVERS:-blkrep nbdkit nbd-server qemu-nbd}"
read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-seqwrite-1m-qd8 randwrite-4k-qd32 randwrite-4k-qd1 randread-4k-qd32}"
PORT0=${BENCH_PORT:-10950}
SIZE_MB=${BENCH_SIZE_MB:-1024}
CACHE=${BENCH_CACHE:-$REPO/.cache/bench}
OUT=${BENCH_OUT:-$REPO/bench/results}
BLKREP=${BLKREP:-$REPO/blkrep}
EXPORT=bench

# The exact command line, with every BENCH_* / BLKREP setting that was in effect.
CMDLINE=""
for v in $(compgen -e | grep -E '^(BENCH_|BLKREP$)' | sort); do
    CMDLINE+="$v=$(printf %q "${!v}") "
done
CMDLINE+="bash bench/bench.sh"
for a in "$@"; do CMDLINE+=" $(printf %q "$a")"; done

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$SECS" =~ ^[0-9]+$ && "$SECS" -ge 1 ]] || die "BENCH_SECONDS must be a positive integer"
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || die "BENCH_ROUNDS must be a positive integer"
[ "$ROUNDS" -ge 3 ] || log "warning: BENCH_ROUNDS=$ROUNDS; the issue asks for the median of at least 3 rounds"
for tool in fio ss ps timeout getconf; do
    command -v "$tool" >/dev/null || die "$tool is not installed (make deps)"
done
[ -n "$PY" ] || die "python3 is not installed"

mkdir -p "$CACHE" "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
RUN="$OUT/run-$STAMP"
mkdir -p "$RUN"
RAW="$RUN/raw.tsv"
BLKREP_BIN="$RUN/blkrep"
IMG="$CACHE/disk.img"

# ---------------------------------------------------------------------------------------
# Process bookkeeping: every server we start is killed on exit, whatever happens.
# ---------------------------------------------------------------------------------------
declare -a STARTED=()     # pids of everything we started (launchers and daemons)

descendants() {           # descendants PID...: print the pids below the given ones
    ps -e -o pid=,ppid= | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
        { par[$1] = $2; order[NR] = $1 }
        END {
            changed = 1
            while (changed) {
                changed = 0
                for (i = 1; i <= NR; i++) { p = order[i]
                    if (!(p in want) && (par[p] in want)) { want[p] = 1; changed = 1; print p } }
            }
        }'
}

kill_tree() {             # kill_tree PID...: TERM, wait up to 5 s, then KILL
    local pids=("$@") all p i
    [ ${#pids[@]} -gt 0 ] || return 0
    all="${pids[*]} $(descendants "${pids[@]}" | tr '\n' ' ')"
    for p in $all; do kill -TERM "$p" 2>/dev/null || true; done
    for i in $(seq 50); do
        local alive=0
        for p in $all; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
    for p in $all; do kill -KILL "$p" 2>/dev/null || true; done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ ${#STARTED[@]} -gt 0 ]; then kill_tree "${STARTED[@]}"; fi
    STARTED=()
    exit $rc
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# CPU time of a server: utime+stime (fields 14, 15 of /proc/PID/stat, which cover all of
# the process's threads) plus cutime+cstime (16, 17: children it has reaped), summed over
# the server and its live descendants.  nbd-server forks one child per connection, so
# without the children it would look nearly free.  A child that exits between two samples
# moves from "live descendant" into its parent's cutime/cstime, so nothing is lost or
# counted twice.  Unit: clock ticks.
# ---------------------------------------------------------------------------------------
cpu_ticks() {
    local root=$1 p s rest total=0
    local -a f
    for p in "$root" $(descendants "$root"); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${s##*) }               # skip "pid (comm) ", comm may hold spaces
        read -r -a f <<<"$rest"      # f[0] is field 3 (state)
        total=$(( total + f[11] + f[12] + f[13] + f[14] ))
    done
    echo "$total"
}

port_pid() {              # port_pid PORT: pid of the process listening on 127.0.0.1:PORT
    ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

port_free() { [ -z "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }

# ---------------------------------------------------------------------------------------
# The servers.  All serve $IMG through the page cache (no O_DIRECT), on 127.0.0.1 TCP,
# under the export name "bench".
# ---------------------------------------------------------------------------------------
server_cmd() {            # server_cmd NAME PORT: print the command line (for the report)
    local name=$1 port=$2
    case $name in
    blkrep)     echo "$BLKREP_BIN serve $IMG --listen 127.0.0.1:$port --name $EXPORT" ;;
    nbdkit)     echo "nbdkit --foreground --exit-with-parent --ipaddr 127.0.0.1 --port $port file file=$IMG" ;;
    nbd-server) echo "nbd-server -C $CACHE/nbd-server-$port.conf -p $CACHE/nbd-server-$port.pid" ;;
    qemu-nbd)   echo "qemu-nbd -f raw --aio=io_uring --cache=writeback --persistent --shared=16 -x $EXPORT -b 127.0.0.1 -p $port $IMG" ;;
    *)          return 1 ;;
    esac
}

declare -a SPID=()        # per server index: pid of the listening server process
declare -a SOWN=()        # per server index: pids started for it (launcher, daemon)

start_server() {          # start_server IDX ROUND: returns 1 on failure
    local idx=$1 r=$2 launcher i pid=""
    local name=${SERVERS[$idx]} port=$(( PORT0 + idx ))
    local logf="$RUN/server-$name-r$r.log"
    SPID[idx]=""; SOWN[idx]=""
    port_free "$port" || { log "$name: port $port is already in use"; return 1; }
    case $name in
    blkrep)
        [ -x "$BLKREP_BIN" ] || { log "blkrep: no binary $BLKREP"; return 1; }
        ;;
    nbd-server)
        # Without user/group root, nbd-server drops to user nbd and serves a 0-byte
        # export.  Its -d (no fork) mode serves one connection only, so it runs as a
        # daemon with a pid file, and its per-connection children are counted too.
        cat >"$CACHE/nbd-server-$port.conf" <<EOF
[generic]
	user = root
	group = root
	listenaddr = 127.0.0.1
	port = $port
[$EXPORT]
	exportname = $IMG
EOF
        rm -f "$CACHE/nbd-server-$port.pid"
        ;;
    esac
    # shellcheck disable=SC2046
    ( exec $(server_cmd "$name" "$port") ) >"$logf" 2>&1 </dev/null &
    launcher=$!
    STARTED+=("$launcher"); SOWN[idx]=$launcher
    for i in $(seq 100); do               # up to 10 s to listen
        pid=$(port_pid "$port")
        if [ -n "$pid" ]; then break; fi
        if [ "$name" != nbd-server ] && ! kill -0 "$launcher" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [ -z "$pid" ]; then
        log "$name: did not start listening on 127.0.0.1:$port; log:"
        sed 's/^/    /' "$logf" >&2 || true
        return 1
    fi
    if [ "$pid" != "$launcher" ]; then STARTED+=("$pid"); SOWN[idx]+=" $pid"; fi
    SPID[idx]=$pid
    # Handshake check with a real client, bounded.
    if command -v nbdinfo >/dev/null; then
        if ! timeout 10 nbdinfo --size "nbd://127.0.0.1:$port/$EXPORT" >"$RUN/nbdinfo-$name.txt" 2>&1; then
            log "$name: nbdinfo could not connect:"; sed 's/^/    /' "$RUN/nbdinfo-$name.txt" >&2
            return 1
        fi
    fi
    return 0
}

stop_server() {           # stop_server IDX
    local idx=$1
    # shellcheck disable=SC2086
    [ -z "${SOWN[idx]:-}" ] || kill_tree ${SOWN[idx]}
    SPID[idx]=""; SOWN[idx]=""
}

# ---------------------------------------------------------------------------------------
# Workloads.
# ---------------------------------------------------------------------------------------
fio_args() {              # fio_args WORKLOAD: the workload-specific fio options
    case $1 in
    seqwrite-1m-qd8)   echo "--rw=write --bs=1M --iodepth=8" ;;
    randwrite-4k-qd32) echo "--rw=randwrite --bs=4k --iodepth=32 --norandommap" ;;
    randwrite-4k-qd1)  echo "--rw=randwrite --bs=4k --iodepth=1 --norandommap" ;;
    randread-4k-qd32)  echo "--rw=randread --bs=4k --iodepth=32 --norandommap" ;;
    *) return 1 ;;
    esac
}
FIO_COMMON=(--ioengine=nbd --numjobs=1 --time_based --runtime="$SECS" --lat_percentiles=1 --output-format=json)
for w in "${WORKLOADS[@]}"; do fio_args "$w" >/dev/null || die "unknown workload $w"; done
for s in "${SERVERS[@]}"; do server_cmd "$s" 0 >/dev/null || die "unknown server $s"; done

# ---------------------------------------------------------------------------------------
# The backing file: written once with real data (no holes), then read into the page cache.
# ---------------------------------------------------------------------------------------
want=$(( SIZE_MB * 1024 * 1024 ))
if [ ! -f "$IMG" ] || [ "$(stat -c %s "$IMG")" != "$want" ] || \
   [ "$(( $(stat -c %b "$IMG") * $(stat -c %B "$IMG") ))" -lt "$want" ]; then
    log "writing $SIZE_MB MiB backing file $IMG"
    timeout 300 dd if=/dev/urandom of="$IMG.tmp" bs=1M count="$SIZE_MB" status=none conv=fsync
    mv "$IMG.tmp" "$IMG"
fi

# blkrep: build it if missing, then run a private copy, so that a rebuild during the run
# cannot mix two binaries into one table.
if [[ " ${SERVERS[*]} " == *" blkrep "* ]]; then
    if [ ! -x "$BLKREP" ] && [ "$BLKREP" = "$REPO/blkrep" ]; then
        log "blkrep: $BLKREP missing, running make"
        timeout 600 make -s -C "$REPO" >"$RUN/make.log" 2>&1 || log "blkrep: make failed, see $RUN/make.log"
    fi
    if [ -x "$BLKREP" ]; then cp "$BLKREP" "$BLKREP_BIN"; else log "blkrep: no binary at $BLKREP"; fi
fi
command -v nbdkit >/dev/null || log "warning: nbdkit not installed"
command -v nbd-server >/dev/null || log "warning: nbd-server not installed"
command -v qemu-nbd >/dev/null || log "warning: qemu-nbd not installed"

{
    echo "# fio $(fio --version 2>/dev/null)"
    echo "# nbdkit $(nbdkit --version 2>/dev/null | head -1 | awk '{print $2}')"
    echo "# nbd-server $(nbd-server -V 2>&1 | grep -o 'version [0-9.]*' | head -1 | awk '{print $2}')"
    echo "# qemu-nbd $(qemu-nbd --version 2>/dev/null | head -1 | awk '{print $2}')"
    if [ -x "$BLKREP_BIN" ]; then
        echo "# blkrep $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo uncommitted)" \
             "(binary built $(stat -c %y "$BLKREP" | cut -d. -f1), sha256 $(sha256sum "$BLKREP_BIN" | cut -c1-12); run from a copy of $BLKREP)"
    fi
} >"$RUN/versions.txt"

printf 'round\tserver\tworkload\tok\tiops\tmibs\tp50_us\tp99_us\tios\tcpu_ticks\truntime_ms\tcpu_us_per_io\tother_cpu_pct\n' >"$RAW"
fail_row() { printf '%s\t%s\t%s\t0\t\t\t\t\t\t\t\t\t\n' "$1" "$2" "$3" >>"$RAW"; }

sys_ticks() {             # "busy total" clock ticks summed over all CPUs, from /proc/stat
    local _ user nice system idle iowait irq softirq steal rest
    read -r _ user nice system idle iowait irq softirq steal rest </proc/stat
    echo "$(( user + nice + system + irq + softirq + steal )) $(( user + nice + system + idle + iowait + irq + softirq + steal ))"
}

# Is the machine idle?  Sample 1 s of /proc/stat before starting.
read -r b0 t0 <<<"$(sys_ticks)"; sleep 1; read -r b1 t1 <<<"$(sys_ticks)"
IDLE_PCT=$(( 100 - 100 * (b1 - b0) / (t1 - t0 > 0 ? t1 - t0 : 1) ))
if [ "$IDLE_PCT" -lt 80 ]; then
    log "warning: the machine is only $IDLE_PCT% idle before the run; numbers will be noisy. Busiest:"
    ps -eo pcpu=,pid=,comm= --sort=-pcpu | head -4 | sed 's/^/    /' >&2
fi

log "command: $CMDLINE"
log "$ROUNDS round(s) x ${#SERVERS[@]} server(s) x ${#WORKLOADS[@]} workload(s) x ${SECS} s; results in $RUN"
n=${#SERVERS[@]}
NCPU=$(nproc)
for (( r = 1; r <= ROUNDS; r++ )); do
    cat "$IMG" >/dev/null        # keep the file in the page cache
    # Every round starts every server afresh (an idle server costs nothing), then runs
    # each workload against all of them back to back, so drift hits every server alike;
    # the order of the servers rotates every round.
    UP=()
    for (( idx = 0; idx < n; idx++ )); do
        if start_server "$idx" "$r"; then UP[idx]=1; else UP[idx]=0; stop_server "$idx"; fi
    done
    log "round $r/$ROUNDS: $(for (( idx = 0; idx < n; idx++ )); do
        printf '%s=%s ' "${SERVERS[$idx]}" "$([ "${UP[$idx]}" = 1 ] && echo "pid:${SPID[$idx]}" || echo FAILED)"; done)"
    for w in "${WORKLOADS[@]}"; do
        for (( k = 0; k < n; k++ )); do
            idx=$(( (k + r - 1) % n ))
            name=${SERVERS[$idx]}
            port=$(( PORT0 + idx ))
            if [ "${UP[$idx]}" != 1 ]; then fail_row "$r" "$name" "$w"; continue; fi
            pid=${SPID[$idx]}
            tag="$name-$w-r$r"
            json="$RUN/fio-$tag.json"
            # shellcheck disable=SC2046
            set -- --name="$w" "${FIO_COMMON[@]}" --uri="nbd://127.0.0.1:$port/$EXPORT" $(fio_args "$w") --output="$json"
            # Start every job with no dirty pages, so background writeback of an earlier
            # job's data does not land inside this one's measurement.
            timeout 120 sync "$IMG" || log "  warning: sync $IMG failed or timed out"
            c0=$(cpu_ticks "$pid"); read -r sb0 st0 <<<"$(sys_ticks)"
            frc=0
            timeout $(( SECS + 60 )) fio "$@" >"$RUN/fio-$tag.log" 2>&1 || frc=$?
            sleep 0.2                    # let the server finish the disconnect (and reap)
            c1=$(cpu_ticks "$pid"); read -r sb1 st1 <<<"$(sys_ticks)"
            if [ $frc != 0 ] || ! kill -0 "$pid" 2>/dev/null; then
                log "  $w $name: fio exit $frc$(kill -0 "$pid" 2>/dev/null || echo ', server died'); see $RUN/fio-$tag.log"
                fail_row "$r" "$name" "$w"
                if ! kill -0 "$pid" 2>/dev/null; then UP[idx]=0; stop_server "$idx"; fi
                continue
            fi
            set -- "$json" $(( c1 - c0 )) "$CLK_TCK" $(( sb1 - sb0 )) $(( st1 - st0 )) "$NCPU"
            if ! line=$("$PY" "$BENCH_DIR/fio_parse.py" "$@"); then
                log "  $w $name: cannot parse $json"
                fail_row "$r" "$name" "$w"
                continue
            fi
            printf '%s\t%s\t%s\t%s\n' "$r" "$name" "$w" "$line" >>"$RAW"
            log "  $(printf '%-17s %-10s' "$w" "$name") $("$PY" "$BENCH_DIR/fio_parse.py" --human "$@")"
        done
    done
    for (( idx = 0; idx < n; idx++ )); do stop_server "$idx"; done
    STARTED=()
done
FIO_CMD="fio --name=W ${FIO_COMMON[*]} --uri=nbd://127.0.0.1:PORT/$EXPORT <workload options> --output=FILE"

# ---------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------
{
    echo "$CMDLINE"
    echo
    for s in "${SERVERS[@]}"; do
        i=0; for (( j = 0; j < n; j++ )); do [ "${SERVERS[$j]}" = "$s" ] && i=$j; done
        echo "$s: $(server_cmd "$s" $(( PORT0 + i )))"
    done
    echo "fio: $FIO_CMD"
    for w in "${WORKLOADS[@]}"; do echo "  $w: $(fio_args "$w")"; done
    echo "host: $(nproc) cores, $(uname -r), CLK_TCK $CLK_TCK"
    cat "$RUN/versions.txt"
} >"$RUN/meta.txt"

"$PY" "$BENCH_DIR/summarize.py" "$RAW" "$RUN/meta.txt" >"$RUN/table.md"
cp "$RUN/table.md" "$OUT/latest.md"
cat "$RUN/table.md"
echo
echo "Written to $OUT/latest.md (raw data in $RUN)"
