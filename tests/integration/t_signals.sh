#!/usr/bin/env bash
# SIGTERM and SIGINT while fio is writing hard: the server finishes what is
# in flight and exits 0 within a few seconds; the client sees the end.
# Also with an idle client that never disconnects, and with no client.
. "$(dirname "$0")/lib.sh"
require_cmd fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd engine"

truncate -s 64M "$T/disk.img"
for sig in TERM INT; do
	start_server "$T/disk.img" || finish
	tmo -t 40 fio --name=load --ioengine=nbd --uri="$SRV_URI" --rw=randwrite \
		--bs=64k --iodepth=16 --numjobs=2 --size=32M --offset_increment=32M \
		--time_based --runtime=30 >"$T/fio.$sig.out" 2>&1 &
	fio_pid=$!
	BG_PIDS+=("$fio_pid")
	sleep 2
	if kill -0 "$fio_pid" 2>/dev/null; then
		pass "SIG$sig: fio is writing"
	else
		fail "SIG$sig: fio ended early"; tail -5 "$T/fio.$sig.out"
	fi
	if stop_server "$SRV_PID" "$sig"; then
		pass "SIG$sig under load: exit status 0"
	fi
	if [ "$SRV_STOP_MS" -lt 5000 ]; then
		pass "SIG$sig under load: exited in ${SRV_STOP_MS} ms"
	else
		fail "SIG$sig under load: took ${SRV_STOP_MS} ms to exit (want < 5000)"
	fi
	for i in $(seq 1 100); do
		kill -0 "$fio_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$fio_pid" 2>/dev/null; then
		fail "SIG$sig: fio still running 10 s after the server exited"
		kill "$fio_pid"
	else
		pass "SIG$sig: the client saw the server go"
	fi
	wait "$fio_pid" 2>/dev/null
	grep -q 'stopping' "$SRV_LOG" && msg "log: $(grep -m1 stopping "$SRV_LOG")"
done

# An idle client that holds its connection open.
start_server "$T/disk.img" || finish
PYTHONPATH=$TESTS_DIR tmo -t 30 $PY -c '
import sys, time
from nbdraw import Conn
c = Conn(("127.0.0.1", int(sys.argv[1]))).handshake()
c.read(0, 4096)
print("connected", flush=True)
time.sleep(20)
' "$SRV_PORT" >"$T/idle.out" 2>&1 &
idle_pid=$!
for i in $(seq 1 50); do grep -q connected "$T/idle.out" && break; sleep 0.1; done
grep -q connected "$T/idle.out" && pass "idle client connected" || fail "idle client did not connect"
stop_server && pass "SIGTERM with an idle client connected: exit 0"
[ "$SRV_STOP_MS" -lt 5000 ] && pass "idle client: exited in ${SRV_STOP_MS} ms" ||
	fail "idle client: took ${SRV_STOP_MS} ms to exit (want < 5000)"
kill "$idle_pid" 2>/dev/null
wait "$idle_pid" 2>/dev/null

start_server "$T/disk.img" --unix || finish
stop_server "$SRV_PID" INT && pass "SIGINT with no client: exit 0"
[ "$SRV_STOP_MS" -lt 2000 ] && pass "no client: exited in ${SRV_STOP_MS} ms" ||
	fail "no client: took ${SRV_STOP_MS} ms to exit (want < 2000)"
finish
