# Writes the fuzz_control seed corpus (python3 tests/fuzz/make-seeds-control.py).
# A seed is a chunk size u8 (bit 7: all at once; else 1 + value bytes per
# recv) then bytes read as a request, as NUL-separated words, and as an answer.
import os
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_control")
ALL = b"\x80"
seeds = {
    "status": ALL + b"status --json\n",
    "crlf_tabs": b"\x02" + b"  primary\t--force \t--discard-unknown \r\n",
    "restore": b"\x00" + b"restore-saved /var/lib/blkrep/r0-alpha-20240101-000000-1.saved\n",
    "words_32": ALL + b" ".join(b"w%d" % i for i in range(32)) + b"\n",
    "words_33": ALL + b" ".join(b"w%d" % i for i in range(33)) + b"\n",
    "empty": ALL + b" \t \r\n",
    "nul": ALL + b"status\0--json\n",
    "control_char": ALL + b"resolve \x1b[31m\n",
    "cr_inside": ALL + b"mode a\rsync\n",
    "too_long": ALL + b"x" * 4096,
    "longest": ALL + b"y" * 4095 + b"\n",
    "no_newline": b"\x10" + b"status",
    "after_newline": ALL + b"ping\nstatus --json\n",
    "join_words": ALL + b"resolve\0--discard-local\0--save-to\0/tmp/x.saved",
    "join_space": ALL + b"restore-saved\0/tmp/my file.saved",
    "join_empty": ALL + b"mode\0\0async",
    "answer_ok": ALL + b"ok\nrole primary\ndisk uptodate\n",
    "answer_error": ALL + b"error\nno such command\n",
    "answer_bare": ALL + b"ok",
    "answer_bad": ALL + b"okay\nfine\n",
    "utf8": ALL + b"restore-saved /tmp/\xc3\xa9t\xc3\xa9.saved\n",
}
os.makedirs(D, exist_ok=True)
for k, v in seeds.items():
    open(os.path.join(D, k), "wb").write(v)
print(len(seeds))
