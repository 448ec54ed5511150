#!/usr/bin/env python3
"""Reduce one fio JSON result (one job) plus the server's CPU ticks to one TSV line.

usage: fio_parse.py [--human] FIO.json SERVER_CPU_TICKS CLK_TCK [SYS_BUSY SYS_TOTAL NCPU]

SYS_BUSY and SYS_TOTAL: non-idle and all clock ticks of the whole machine (all CPUs,
/proc/stat) over the same window; with them, other_cpu_pct estimates the CPU that neither
the server nor fio used (other processes, kernel writeback), in % of one core.

TSV output: ok iops mibs p50_us p99_us ios cpu_ticks runtime_ms cpu_us_per_io other_cpu_pct
"""
import json
import sys


def load(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    # fio may print notices ("fio: connected to NBD server") before the JSON.
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON in " + path)
    return json.loads(text[start:])


def main(argv):
    human = False
    if argv and argv[0] == "--human":
        human = True
        argv = argv[1:]
    path, ticks, clk_tck = argv[0], int(argv[1]), int(argv[2])
    sys_busy = sys_total = None
    if len(argv) >= 6:
        sys_busy, sys_total, ncpu = int(argv[3]), int(argv[4]), max(1, int(argv[5]))
    job = load(path)["jobs"][0]
    if job.get("error"):
        raise SystemExit("fio job error %s" % job["error"])
    ios = iops = bw = 0.0
    runtime = 0
    pct = {}
    best = -1
    for ddir in ("read", "write", "trim"):
        d = job.get(ddir)
        if not d:
            continue
        ios += d.get("total_ios", 0)
        iops += d.get("iops", 0.0)
        bw += d.get("bw_bytes", 0)
        runtime = max(runtime, d.get("runtime", 0))
        # Total latency (submission + completion, fio's lat_ns, which needs
        # --lat_percentiles=1).  Completion latency alone (clat_ns) misleads with the nbd
        # engine: at low queue depth libnbd often reads the reply inside the submit call,
        # so that request's clat is ~0 and the clat distribution turns bimodal.
        lat = d.get("lat_ns", {})
        if "percentile" not in lat:
            lat = d.get("clat_ns", {})
        n = lat.get("N", 0)
        if n > best:  # latency of the direction that did the work
            best = n
            pct = lat.get("percentile", {})
    if ios <= 0:
        raise SystemExit("no I/O completed")
    p50 = pct.get("50.000000", 0) / 1000.0
    p99 = pct.get("99.000000", 0) / 1000.0
    mibs = bw / 1048576.0
    cpu_us_per_io = ticks * 1e6 / clk_tck / ios
    other = float("nan")
    if sys_total:
        fio_ticks = (job.get("usr_cpu", 0) + job.get("sys_cpu", 0)) / 100.0 \
            * runtime / 1000.0 * clk_tck
        other = max(0.0, (sys_busy - ticks - fio_ticks) / (sys_total / ncpu) * 100)
    if human:
        print("%9.0f IOPS %8.1f MiB/s  p50 %7.1f us  p99 %8.1f us  server CPU %6.2f us/IO"
              "  other load %3.0f%%" % (iops, mibs, p50, p99, cpu_us_per_io, other))
    else:
        print("1\t%.1f\t%.2f\t%.1f\t%.1f\t%d\t%d\t%d\t%.3f\t%.0f"
              % (iops, mibs, p50, p99, ios, ticks, runtime, cpu_us_per_io, other))


if __name__ == "__main__":
    main(sys.argv[1:])
