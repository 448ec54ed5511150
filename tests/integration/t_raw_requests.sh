#!/usr/bin/env bash
# Transmission-phase abuse from raw sockets (TCP, then unix): oversized and
# out-of-range WRITEs with the payload read off, unknown commands and flags,
# zero-length requests, 48 MiB TRIM, dribbled and pipelined requests,
# structured error chunks; then 65 MiB headers, garbage magic, clients
# vanishing mid-header and mid-payload, a client that never reads its
# replies.  Other clients keep being served and the backing file ends up
# exactly as the legitimate writes left it.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || skip "$PY is missing"

make_pattern "$T/disk.img" 64
cp "$T/disk.img" "$T/ref.img"
start_server "$T/disk.img" || finish
py_checks "raw requests (tcp)" "$TESTS_DIR/raw_requests.py" tcp 127.0.0.1 "$SRV_PORT" "$T/ref.img"
kill -0 "$SRV_PID" 2>/dev/null && pass "server still running" || fail "server died"
stop_server && pass "server exits 0 on SIGTERM"
check "backing file equals the reference (tcp round)" cmp "$T/ref.img" "$T/disk.img"

start_server "$T/disk.img" --unix || finish
py_checks "raw requests (unix)" "$TESTS_DIR/raw_requests.py" unix "$SRV_SOCK" "$T/ref.img"
kill -0 "$SRV_PID" 2>/dev/null && pass "server still running" || fail "server died"
stop_server && pass "server exits 0 on SIGTERM"
check "backing file equals the reference (unix round)" cmp "$T/ref.img" "$T/disk.img"
finish
