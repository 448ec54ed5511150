#!/usr/bin/env bash
# Every config in README.md parses: each ``` block that holds a [resource
# section is checked with `blkrep check-config` for both of its nodes.  A
# block without a resource name is a fragment that adds to the full example
# (the TLS keys): its keys are merged into the first full block's sections.
. "$(dirname "$0")/lib.sh"

n=$($PY - "$REPO/README.md" "$T" <<'PY'
import re, sys, textwrap
text = open(sys.argv[1]).read()
blocks = [textwrap.dedent(b) for _, b in
          re.findall(r'^( *)```[^\n]*\n(.*?)^\1```', text, re.S | re.M)
          if re.search(r'^\s*\[resource', b, re.M)]
def sections(b):
    out, cur = {}, None
    for line in b.splitlines():
        m = re.match(r'\s*\[([^]]+)\]', line)
        if m:
            cur = m.group(1).strip()
            out.setdefault(cur, [])
        elif cur and line.strip() and not line.lstrip().startswith('#'):
            out[cur].append(line.strip())
    return out
full = next(b for b in blocks if re.search(r'^\s*name\s*=', b, re.M))
for i, b in enumerate(blocks):
    if not re.search(r'^\s*name\s*=', b, re.M):
        merged = full
        for sec, lines in sections(b).items():
            merged = re.sub(r'^(\[%s\][^\n]*\n)' % re.escape(sec),
                            lambda m: m.group(1) + '\n'.join(lines) + '\n', merged,
                            count=1, flags=re.M)
        b = merged
    open('%s/readme%d.conf' % (sys.argv[2], i), 'w').write(b)
print(len(blocks))
PY
)
[ "${n:-0}" -ge 2 ] && pass "README.md holds $n config blocks" ||
	fail "README.md: expected at least 2 config blocks, found '${n:-}'"
for f in "$T"/readme*.conf; do
	for node in alpha beta $(grep -q '^\[node gamma\]' "$f" && echo gamma); do
		check "$(basename "$f") ($node) parses" "$BLKREP" -c "$f" --node "$node" check-config
		grep -q "this node $node" "$T/last.out" && pass "... and names node $node" ||
			fail "check-config $node: $(cat "$T/last.out" "$T/last.err")"
	done
done
# The three-node example: gamma's own mode and max-lag are listed.
f=$(grep -l '^\[node gamma\]' "$T"/readme*.conf | head -1)
if [ -n "$f" ]; then
	check "three nodes: check-config lists them" "$BLKREP" -c "$f" --node alpha check-config
	grep -q "^  node gamma: address .*, mode async, max-lag 64.0 MiB$" "$T/last.out" &&
		pass "... gamma with its own mode and max-lag" || fail "three nodes: $(cat "$T/last.out")"
else
	fail "README.md has no three-node config (a [node gamma] section)"
fi
# The check fails where it should: one line saying why, exit 1.
sed 's/^mode = sync.*/mode = fast # a bad mode/' "$T/readme0.conf" >"$T/bad.conf"
check_exit "a bad config is refused (exit 1)" 1 "$BLKREP" -c "$T/bad.conf" --node alpha check-config
[ "$(wc -l <"$T/last.err")" = 1 ] && grep -q "bad.conf:[0-9]*: bad mode 'fast'" "$T/last.err" &&
	pass "... in one line with FILE:LINE" || fail "bad config: $(cat "$T/last.err")"
check_exit "an unknown node is refused (exit 1)" 1 "$BLKREP" -c "$T/readme0.conf" --node gamma check-config
finish
