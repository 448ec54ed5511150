#!/usr/bin/env python3
"""Turn bench.sh's raw.tsv into the markdown report (medians over rounds, blkrep ratios).

usage: summarize.py RAW.tsv META.txt
"""
import csv
import statistics
import sys
import time

SUBJECT = "blkrep"
THROUGHPUT_TARGET = 1.0   # blkrep throughput >= 1.0x the best anchor, every row
CPU_TARGET = 0.7          # blkrep CPU/IO <= 0.7x the anchor with the lowest CPU/IO
LABELS = {
    "seqwrite-1m-qd8": "seq write 1M QD8",
    "randwrite-4k-qd32": "rand write 4k QD32",
    "randwrite-4k-qd1": "rand write 4k QD1",
    "randread-4k-qd32": "rand read 4k QD32",
}
METRICS = ("iops", "mibs", "p50_us", "p99_us", "cpu_us_per_io", "other_cpu_pct")


def fmt_iops(v):
    return "%.1fk" % (v / 1000) if v >= 1000 else "%.0f" % v


def fmt(v, digits=1):
    return ("%%.%df" % digits) % v


def main(raw_path, meta_path):
    with open(raw_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(meta_path, encoding="utf-8") as f:
        meta = f.read().rstrip("\n").split("\n")

    servers, workloads = [], []
    runs = {}   # (server, workload) -> list of per-round dicts (ok rows only)
    tries = {}  # (server, workload) -> rounds attempted
    rounds = set()
    for r in rows:
        s, w = r["server"], r["workload"]
        if s not in servers:
            servers.append(s)
        if w not in workloads:
            workloads.append(w)
        rounds.add(r["round"])
        tries[(s, w)] = tries.get((s, w), 0) + 1
        if r["ok"] == "1":
            runs.setdefault((s, w), []).append(
                {m: float(r.get(m) or "nan") for m in METRICS})
    # Put the subject first, anchors after, in their original order.
    servers.sort(key=lambda s: s != SUBJECT)

    med = {}
    for key, lst in runs.items():
        med[key] = {m: statistics.median(x[m] for x in lst) for m in METRICS}
        med[key]["other_max"] = max(x["other_cpu_pct"] for x in lst)
        ios = [x["iops"] for x in lst]
        med[key]["spread"] = (max(ios) - min(ios)) / statistics.median(ios) * 100 if ios else 0
        med[key]["n"] = len(lst)

    out = []
    p = out.append
    p("# blkrep benchmark")
    p("")
    p("%s; median of %d round(s) per cell; every server serves the same page-cached file "
      "on 127.0.0.1 TCP; fio nbd engine, one connection per job."
      % (time.strftime("%Y-%m-%d %H:%M"), len(rounds)))
    p("")
    p("Command:")
    p("")
    p("```")
    p(meta[0])
    p("```")
    p("")
    p("| workload | server | IOPS | MiB/s | p50 us | p99 us | server CPU us/IO | server CPU % "
      "| IOPS spread | other load % | rounds ok |")
    p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for w in workloads:
        for s in servers:
            m = med.get((s, w))
            if not m:
                p("| %s | %s | failed | | | | | | | | 0/%d |" % (LABELS.get(w, w), s, tries.get((s, w), 0)))
                continue
            p("| %s | %s | %s | %s | %s | %s | %s | %s | %.0f%% | %s | %d/%d |" % (
                LABELS.get(w, w), s, fmt_iops(m["iops"]), fmt(m["mibs"]), fmt(m["p50_us"]),
                fmt(m["p99_us"]), fmt(m["cpu_us_per_io"], 2),
                fmt(m["cpu_us_per_io"] * m["iops"] / 1e4, 0), m["spread"],
                "%.0f (max %.0f)" % (m["other_cpu_pct"], m["other_max"]), m["n"], tries[(s, w)]))
    p("")

    anchors = [s for s in servers if s != SUBJECT]
    p("## blkrep against the anchors")
    p("")
    p("Throughput ratio: blkrep IOPS / IOPS of the fastest anchor on that row "
      "(target >= %.1fx). CPU ratio: blkrep server CPU per I/O / that of the anchor with "
      "the lowest CPU per I/O on that row (target <= %.1fx). Both from the medians above."
      % (THROUGHPUT_TARGET, CPU_TARGET))
    p("")
    p("| workload | blkrep IOPS | best anchor | its IOPS | throughput ratio | >= %.1fx | "
      "blkrep CPU us/IO | leanest anchor | its CPU us/IO | CPU ratio | <= %.1fx |"
      % (THROUGHPUT_TARGET, CPU_TARGET))
    p("|---|--:|---|--:|--:|:-:|--:|---|--:|--:|:-:|")
    met_t = met_c = total = 0
    for w in workloads:
        total += 1
        mine = med.get((SUBJECT, w))
        have = [(s, med[(s, w)]) for s in anchors if (s, w) in med]
        if not have:
            p("| %s | %s | no anchor | | | | | | | | |" % (LABELS.get(w, w),
              fmt_iops(mine["iops"]) if mine else "failed"))
            continue
        fast_s, fast = max(have, key=lambda x: x[1]["iops"])
        lean_s, lean = min(have, key=lambda x: x[1]["cpu_us_per_io"])
        if not mine:
            p("| %s | failed | %s | %s | | no | failed | %s | %s | | no |" % (
                LABELS.get(w, w), fast_s, fmt_iops(fast["iops"]), lean_s,
                fmt(lean["cpu_us_per_io"], 2)))
            continue
        tr = mine["iops"] / fast["iops"]
        cr = mine["cpu_us_per_io"] / lean["cpu_us_per_io"] if lean["cpu_us_per_io"] > 0 else float("inf")
        ok_t = tr >= THROUGHPUT_TARGET
        ok_c = cr <= CPU_TARGET
        met_t += ok_t
        met_c += ok_c
        p("| %s | %s | %s | %s | %.2fx | %s | %s | %s | %s | %.2fx | %s |" % (
            LABELS.get(w, w), fmt_iops(mine["iops"]), fast_s, fmt_iops(fast["iops"]), tr,
            "yes" if ok_t else "**no**", fmt(mine["cpu_us_per_io"], 2), lean_s,
            fmt(lean["cpu_us_per_io"], 2), cr, "yes" if ok_c else "**no**"))
    p("")
    p("Targets met: throughput on %d/%d rows, CPU per I/O on %d/%d rows."
      % (met_t, total, met_c, total))
    p("")
    p("Columns: IOPS, MiB/s and p50/p99 total latency (submission + completion, fio's lat) "
      "as fio reports them; "
      "server CPU us/IO = (utime+stime+cutime+cstime of the server process tree over the "
      "fio job, from /proc/PID/stat) / I/Os fio completed; server CPU % = that CPU time as "
      "a share of one core; IOPS spread = (max-min)/median of IOPS over the rounds; "
      "other load % = CPU used on the machine by neither the server nor fio during the job "
      "(other processes, kernel writeback), in % of one core: when it is high, the cell "
      "was disturbed.")
    p("")
    p("Setup:")
    p("")
    p("```")
    for line in meta[2:]:
        p(line)
    p("```")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
