#!/usr/bin/env bash
# Handshake abuse from a raw socket: unknown options (ERR_UNSUP), STARTTLS
# (ERR_POLICY), malformed option lengths (ERR_INVALID) with negotiation
# going on afterwards, EXPORT_NAME padding, ABORT, unknown client flags,
# bad option magic, absurd option lengths, clients vanishing mid-option;
# a client connected throughout keeps being served.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || skip "$PY is missing"

make_pattern "$T/disk.img" 16
cp "$T/disk.img" "$T/ref.img"
start_server "$T/disk.img" --name vol || finish
py_checks "raw handshake" "$TESTS_DIR/raw_handshake.py" tcp 127.0.0.1 "$SRV_PORT" vol 16777216 "$SERVER"
kill -0 "$SRV_PID" 2>/dev/null && pass "server still running" || fail "server died"
stop_server && pass "server exits 0 on SIGTERM"
check "backing file unchanged" cmp "$T/ref.img" "$T/disk.img"
finish
