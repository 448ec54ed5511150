#!/usr/bin/env bash
# TLS on the replication link refuses the wrong peer, with the reason in
# `status --json`'s peer.last_error on the refusing side (issue 14, item 5):
#   - wrong PSK (the two nodes' secret files differ): "authentication
#     failed" ... "secret";
#   - certificate mode (tls-ca in [resource], tls-certificate and tls-key in
#     each [node]): beta's certificate from another CA (alpha refuses:
#     "certificate" ... "unable to get local issuer certificate"), alpha's
#     from another CA (beta refuses), beta's certificate expired (alpha
#     refuses: "certificate has expired"), beta's certificate naming
#     another node (alpha refuses);
# and in each case the pair never connects.  Positive cases: the same
# secret connects with peer.encryption "tls-psk", the right certificates
# with "tls-certificate", and tls_offload says "kernel" or "userspace".
# Everything is made here with the openssl CLI (the expired certificate by
# `openssl ca -startdate/-enddate`, which OpenSSL 3.0 has).
. "$(dirname "$0")/lib.sh"
require_cmd openssl
. "$(dirname "$0")/pair.sh"
. "$(dirname "$0")/mitm_lib.sh"
pair_init 64M 64M
trap 'pair_stop; _cleanup' EXIT
# How long a refused pair is watched for never connecting.
WATCH=${TLS_WATCH_SECONDS:-4}

# --- the PKI ---
P=$T/pki
mkdir -p "$P"
cat >"$P/ca.cnf" <<EOF
[ca]
default_ca = testca
[testca]
database = $P/index.txt
new_certs_dir = $P
serial = $P/serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
: >"$P/index.txt"
echo 01 >"$P/serial"
pki() {
	"$@" >>"$P/openssl.log" 2>&1 || { fail "openssl: $*"; tail -n 5 "$P/openssl.log" | sed 's/^/    | /'; return 1; }
}
# ca NAME: a self-signed CA.
ca() {
	pki openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-keyout "$P/$1.key" -out "$P/$1.pem" -subj "/CN=blkrep test $1" \
		-config "$P/ca.cnf" -extensions v3_ca
}
# cert FILE CA NODE-NAME [ca-args...]: FILE.crt/FILE.key for NODE-NAME
# (CN and SAN DNS), signed by CA; with ca-args, through `openssl ca`.
cert() {
	local f=$1 c=$2 n=$3
	shift 3
	pki openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$P/$f.key" -out "$P/$f.csr" -subj "/CN=$n" \
		-addext "subjectAltName=DNS:$n" -addext "extendedKeyUsage=serverAuth,clientAuth" || return 1
	if [ $# -gt 0 ]; then
		pki openssl ca -batch -config "$P/ca.cnf" -cert "$P/$c.pem" -keyfile "$P/$c.key" \
			-in "$P/$f.csr" -out "$P/$f.crt" "$@"
	else
		pki openssl x509 -req -in "$P/$f.csr" -CA "$P/$c.pem" -CAkey "$P/$c.key" \
			-CAcreateserial -days 30 -copy_extensions copy -out "$P/$f.crt"
	fi
	chmod 600 "$P/$f.key"
}
ca ca1 && ca ca2 &&
	cert alpha ca1 alpha && cert beta ca1 beta &&
	cert alpha2 ca2 alpha && cert beta2 ca2 beta &&
	cert beta-expired ca1 beta -startdate 20200101000000Z -enddate 20200102000000Z &&
	cert beta-gamma ca1 gamma || skip "cannot make the test certificates with this openssl"
openssl verify -CAfile "$P/ca1.pem" "$P/beta-expired.crt" 2>&1 | grep -q expired ||
	skip "openssl did not make an expired certificate"
openssl verify -CAfile "$P/ca1.pem" "$P/beta.crt" "$P/alpha.crt" >/dev/null 2>&1 &&
	! openssl verify -CAfile "$P/ca1.pem" "$P/beta2.crt" >/dev/null 2>&1 &&
	pass "test PKI: two CAs, certificates for alpha, beta, an expired beta, a 'gamma'" ||
	fail "the test certificates do not verify as intended"

# tls_conf FILE SECRET-FILE [CA ALPHA-CERT BETA-CERT]: a config; with CA,
# in certificate mode (CERT names FILE.crt/FILE.key under $P).
tls_conf() {
	{
		printf '[resource]\nname = r0\nsecret-file = %s\n' "$2"
		[ $# -ge 5 ] && printf 'tls-ca = %s\n' "$P/$3.pem"
		printf '[node alpha]\naddress = 127.0.0.1:%s\nbacking = %s\nnbd = unix:%s\n' \
			"$PAIR_PORT_A" "$T/a.img" "$T/alpha.nbd"
		[ $# -ge 5 ] && printf 'tls-certificate = %s\ntls-key = %s\n' "$P/$4.crt" "$P/$4.key"
		printf '[node beta]\naddress = 127.0.0.1:%s\nbacking = %s\nnbd = unix:%s\n' \
			"$PAIR_PORT_B" "$T/b.img" "$T/beta.nbd"
		[ $# -ge 5 ] && printf 'tls-certificate = %s\ntls-key = %s\n' "$P/$5.crt" "$P/$5.key"
	} >"$1"
}

strong_secret "$T/secret"
strong_secret "$T/secret2"
tls_conf "$T/r0.conf" "$T/secret"
A="$B -c $T/r0.conf --node alpha"
Bn="$B -c $T/r0.conf --node beta"
check "create alpha --zeroed" $A create --zeroed
check "create beta --zeroed" $Bn create --zeroed

# both_up LABEL CONF-A CONF-B: up both nodes with these configs.
both_up() {
	pair_stop
	A="$B -c $2 --node alpha"
	Bn="$B -c $3 --node beta"
	if ! tmo -t 30 $A up >"$T/up.out" 2>&1 || ! tmo -t 30 $Bn up >>"$T/up.out" 2>&1; then
		fail "$1: up refused the config: $(grep -m1 -i 'error' "$T/up.out")"
		return 1
	fi
}

# both NODE-FIELDS: "connA connB" and the peer.last_error of each.
pair_view() {
	{ $A status --json; echo; $Bn status --json; } 2>/dev/null | "$PY" -c '
import json, sys
ds = [json.loads(l) for l in sys.stdin.read().split("\n") if l.strip()]
if len(ds) != 2:
    print("unavailable\tunavailable\t\t"); sys.exit(0)
print("\t".join([ds[0]["peer"]["connection"], ds[1]["peer"]["connection"],
                 ds[0]["peer"].get("last_error", ""), ds[1]["peer"].get("last_error", "")]))'
}

# refused LABEL SIDE REGEX...: for $WATCH s the pair never connects, and
# peer.last_error of SIDE (alpha, beta or either) matches every REGEX
# (grep -Ei) by then.
refused() {
	local label=$1 side=$2 end=$((SECONDS + WATCH)) v ca cb ea eb e r ok=0 conn=0
	shift 2
	while :; do
		v=$(pair_view)
		IFS=$'\t' read -r ca cb ea eb <<<"$v"
		[ "$ca" = connected ] || [ "$cb" = connected ] && conn=1
		case $side in alpha) e=$ea ;; beta) e=$eb ;; *) e="$ea | $eb" ;; esac
		if [ $ok -eq 0 ]; then
			ok=1
			for r in "$@"; do
				grep -qEi -- "$r" <<<"$e" || ok=0
			done
		fi
		[ $SECONDS -ge $end ] && break
		sleep 0.3
	done
	if [ $conn -eq 0 ]; then
		pass "$label: the pair never connects within $WATCH s"
	else
		fail "$label: the pair connected"
	fi
	if [ $ok -eq 1 ]; then
		pass "$label: $side's peer.last_error says why: $e"
	else
		fail "$label: $side's peer.last_error does not match '$*': alpha: '$ea', beta: '$eb'"
	fi
}

# --- PSK (the default) ---
tls_conf "$T/a.conf" "$T/secret"
tls_conf "$T/b.conf" "$T/secret2"
if both_up "wrong PSK" "$T/a.conf" "$T/b.conf"; then
	refused "wrong PSK" either "authentication failed" "secret"
fi

if both_up "PSK" "$T/r0.conf" "$T/r0.conf"; then
	check_eq "PSK: the same secret connects" "$(wait_field "$A" "d['peer']['connection']" connected 10)" connected
	check_eq "PSK: encryption is tls-psk on both sides" \
		"$(peer_field "$A" encryption) $(peer_field "$Bn" encryption)" "tls-psk tls-psk"
	t=$(peer_field "$A" tls_offload)
	case $t in kernel | userspace) pass "PSK: tls_offload is $t" ;;
	*) fail "PSK: tls_offload is '$t', want kernel or userspace" ;; esac
fi

# --- certificates ---
cert_case() {
	local label=$1 alpha=$2 beta=$3 side=$4
	shift 4
	tls_conf "$T/c.conf" "$T/secret" ca1 "$alpha" "$beta"
	both_up "$label" "$T/c.conf" "$T/c.conf" || return 1
	refused "$label" "$side" "$@"
}
cert_case "wrong CA (beta's)" alpha beta2 alpha "certificate" "issuer"
cert_case "wrong CA (alpha's)" alpha2 beta beta "certificate" "issuer"
cert_case "expired (beta's)" alpha beta-expired alpha "expired"
cert_case "wrong name (beta's names gamma)" alpha beta-gamma alpha "certificate" "name|gamma|beta|match"

tls_conf "$T/c.conf" "$T/secret" ca1 alpha beta
if both_up "certificates" "$T/c.conf" "$T/c.conf"; then
	check_eq "certificates: the right ones connect" "$(wait_field "$A" "d['peer']['connection']" connected 10)" connected
	check_eq "certificates: encryption is tls-certificate on both sides" \
		"$(peer_field "$A" encryption) $(peer_field "$Bn" encryption)" "tls-certificate tls-certificate"
	check_eq "certificates: no last_error once connected" "$(field "$A" "d['peer']['last_error']")" ""
fi
finish
