#!/usr/bin/env bash
# test_federation_script.sh - deploy/sova-federation: init, issue, id, refusals.
# Prints one "ok - ..." line per check; the first failed check prints
# "FAIL - ..." with what was expected and what came, and exits 1.
# (The C side's node ID is compared with `sova-federation id` in
# tests/unit/test_identity.c; TLS handshakes with these certificates are in
# tests/unit/test_tls.c.)
set -euo pipefail

SRC=${SOVA_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
FED="$SRC/deploy/sova-federation"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sova-test-federation.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
cd "$WORK"

checks=0
ok() {
    checks=$((checks + 1))
    echo "ok - $*"
}
fail() {
    echo "FAIL - $*" >&2
    exit 1
}
mode_of() { stat -c %a "$1"; }
expect_mode() { # FILE MODE
    local got
    got=$(mode_of "$1")
    [[ $got == "$2" ]] || fail "$1 has mode $got, expected $2"
    ok "$1 has mode $2"
}
# Run the script expecting failure with a message matching PATTERN.
expect_refusal() { # PATTERN ARGS...
    local pattern=$1 out rc=0
    shift
    out=$("$FED" "$@" 2>&1) || rc=$?
    ((rc != 0)) || fail "sova-federation $* succeeded; expected a refusal"
    [[ $out =~ $pattern ]] || fail "sova-federation $* said '$out'; expected /$pattern/"
    ok "sova-federation $* refused (exit $rc): ${out%%$'\n'*}"
}
cert_text() { openssl x509 -in "$1" -noout -text; }
expect_in_cert() { # CERT PATTERN WHAT
    cert_text "$1" | grep -Eq -- "$2" || fail "$1 lacks $3 (/$2/)"
    ok "$1 has $3"
}
listing() { (shopt -s dotglob nullglob && cd "$1" && echo *); }

[[ -x $FED ]] || fail "$FED is missing or not executable"

# ---- usage -------------------------------------------------------------------
rc=0
"$FED" >/dev/null 2>&1 || rc=$?
((rc == 2)) || fail "no arguments: exit $rc, expected 2 (usage)"
ok "no arguments prints usage and exits 2"
expect_refusal "unknown command" frobnicate fed

# ---- init ----------------------------------------------------------------------
"$FED" init fed >/dev/null || fail "init fed failed"
ok "init fed"
[[ -f fed/root.crt ]] || fail "fed/root.crt missing"
expect_mode fed/root.key 600
expect_mode fed 700
expect_in_cert fed/root.crt 'CA:TRUE' "CA:TRUE"
cert_text fed/root.crt | grep -A1 'Basic Constraints' | grep -q critical ||
    fail "root basicConstraints not critical"
ok "root basicConstraints is critical"
expect_in_cert fed/root.crt 'Certificate Sign, CRL Sign' "keyUsage keyCertSign,cRLSign"
expect_in_cert fed/root.crt 'Public Key Algorithm: ED25519' "an Ed25519 key"
openssl x509 -in fed/root.crt -noout -checkend $((15 * 365 * 86400)) >/dev/null ||
    fail "root certificate expires within 15 years"
ok "root certificate is valid for 15+ years"
subject=$(openssl x509 -in fed/root.crt -noout -subject)
issuer=$(openssl x509 -in fed/root.crt -noout -issuer)
[[ ${subject#subject=} == "${issuer#issuer=}" ]] || fail "root is not self-signed: $subject / $issuer"
ok "root is self-signed ($subject)"

root_sum=$(sha256sum fed/root.key fed/root.crt)
expect_refusal "already exists" init fed
[[ $(sha256sum fed/root.key fed/root.crt) == "$root_sum" ]] || fail "a refused init changed the root"
ok "refused init left root.key and root.crt unchanged"

# ---- issue ---------------------------------------------------------------------
"$FED" issue fed sn1 >/dev/null || fail "issue fed sn1 failed"
ok "issue fed sn1"
expect_mode fed/sn1.key 600
out=$(openssl verify -CAfile fed/root.crt fed/sn1.crt 2>&1) || fail "openssl verify: $out"
[[ $out == "fed/sn1.crt: OK" ]] || fail "openssl verify said '$out'"
ok "openssl verify -CAfile fed/root.crt fed/sn1.crt: OK"
expect_in_cert fed/sn1.crt 'CA:FALSE' "CA:FALSE"
expect_in_cert fed/sn1.crt 'Digital Signature' "keyUsage digitalSignature"
expect_in_cert fed/sn1.crt 'TLS Web Server Authentication, TLS Web Client Authentication' \
    "extendedKeyUsage serverAuth+clientAuth"
expect_in_cert fed/sn1.crt 'Public Key Algorithm: ED25519' "an Ed25519 key"
expect_in_cert fed/sn1.crt 'Subject: CN ?= ?sn1' "subject CN=sn1"
openssl pkey -in fed/sn1.key -noout 2>/dev/null || fail "fed/sn1.key is not an unencrypted key"
ok "fed/sn1.key is an unencrypted PEM key"

SOVA_SAN="DNS:sn2.example.org,IP:203.0.113.7" "$FED" issue fed sn2 30 >/dev/null ||
    fail "issue fed sn2 30 with SOVA_SAN failed"
expect_in_cert fed/sn2.crt 'DNS:sn2.example.org, IP Address:203.0.113.7' "the SOVA_SAN names"
openssl x509 -in fed/sn2.crt -noout -checkend $((29 * 86400)) >/dev/null ||
    fail "sn2 (30 days) expires within 29 days"
if openssl x509 -in fed/sn2.crt -noout -checkend $((31 * 86400)) >/dev/null; then
    fail "sn2 (30 days) is still valid in 31 days"
fi
ok "DAYS=30 gives a 30-day certificate"
s1=$(openssl x509 -in fed/sn1.crt -noout -serial)
s2=$(openssl x509 -in fed/sn2.crt -noout -serial)
[[ $s1 != "$s2" && ${#s1} -ge 30 ]] || fail "serials not random: $s1 / $s2"
ok "random serials ($s1, $s2)"

sn1_sum=$(sha256sum fed/sn1.key fed/sn1.crt)
expect_refusal "already exists" issue fed sn1
[[ $(sha256sum fed/sn1.key fed/sn1.crt) == "$sn1_sum" ]] || fail "a refused issue changed sn1"
ok "refused issue left sn1 unchanged"

before=$(listing fed)
for name in ../evil a/b "" .hidden -x root "a b" 'x;y' \
    "$(printf 'n%.0s' {1..65})"; do
    expect_refusal "bad NAME|reserved" issue fed "$name"
done
expect_refusal "bad DAYS" issue fed sn3 0
expect_refusal "bad DAYS" issue fed sn3 ten
SOVA_SAN="bogus" expect_refusal "failed to sign" issue fed sn4
[[ $(listing fed) == "$before" ]] || fail "refusals changed fed/: '$before' -> '$(listing fed)'"
[[ ! -e evil.key && ! -e evil.crt ]] || fail "a bad NAME wrote outside fed/"
ok "refusals left no file behind (fed/: $before)"
mkdir empty
expect_refusal "no federation root" issue empty sn1

# ---- rogue root ----------------------------------------------------------------
"$FED" init rogue >/dev/null || fail "init rogue failed"
"$FED" issue rogue sn1 >/dev/null || fail "issue rogue sn1 failed"
if openssl verify -CAfile fed/root.crt rogue/sn1.crt >/dev/null 2>&1; then
    fail "a certificate from another root verified against fed/root.crt"
fi
ok "rogue/sn1.crt does not verify against fed/root.crt"

# ---- id ------------------------------------------------------------------------
id=$("$FED" id fed/sn1.crt) || fail "id fed/sn1.crt failed"
[[ $id =~ ^[a-z2-7]{52}$ ]] || fail "id '$id' is not 52 lowercase base32 characters"
ok "id fed/sn1.crt = $id"
[[ $("$FED" id rogue/sn1.crt) != "$id" ]] || fail "two keys gave the same node ID"
ok "different keys give different IDs"
if command -v python3 >/dev/null; then
    # Independent of the script's pipeline: decode the PEM public key here.
    ref=$(openssl x509 -in fed/sn1.crt -noout -pubkey | python3 -c '
import base64, hashlib, sys
pem = "".join(l for l in sys.stdin.read().splitlines() if "-----" not in l)
digest = hashlib.sha256(base64.b64decode(pem)).digest()
print(base64.b32encode(digest).decode().rstrip("=").lower())')
    [[ $ref == "$id" ]] || fail "id says $id, python over the SPKI DER says $ref"
    ok "id equals SHA-256(SPKI DER) in base32 computed by python"
fi
expect_refusal "cannot read" id fed/sn1.key
expect_refusal "cannot read" id /nonexistent.crt

# bundle: the root and the bootstrap supernodes, signed with the root key
expect_refusal "usage" bundle fed
expect_refusal "bad supernode address 'nohost'" bundle fed nohost
expect_refusal "bad supernode address 'a:0'" bundle fed 127.0.0.1:7070 a:0
expect_refusal "no federation root in nofed" bundle nofed 127.0.0.1:7070
"$FED" bundle fed sn1.example.net:7070 "[2001:db8::1]:7070" >/dev/null || fail "bundle failed"
grep -qx 'sova-bundle 1' fed/sova.bundle && grep -qx 'bootstrap sn1.example.net:7070' fed/sova.bundle &&
    grep -qx 'bootstrap \[2001:db8::1\]:7070' fed/sova.bundle || fail "bundle: $(cat fed/sova.bundle)"
sed '/^signature /d' fed/sova.bundle >bundle.body
openssl x509 -in fed/root.crt -noout -pubkey >root.pub
grep '^signature ' fed/sova.bundle | cut -d' ' -f2 | openssl base64 -d -A >bundle.sig
openssl pkeyutl -verify -pubin -inkey root.pub -rawin -in bundle.body -sigfile bundle.sig >/dev/null ||
    fail "the bundle's signature does not verify with root.crt's key"
ok "bundle signs the root certificate and the supernodes with the root key (openssl verifies it)"
expect_refusal "refusing to overwrite" bundle fed sn1.example.net:7070
"$FED" init fed-b >/dev/null
cp fed-b/root.crt mixed.crt && mkdir -p mixed && cp fed/root.key mixed/root.key && cp mixed.crt mixed/root.crt
expect_refusal "does not belong to mixed/root.crt" bundle mixed 127.0.0.1:7070
[[ ! -e mixed/sova.bundle ]] || fail "a refused bundle was written"

echo "all $checks checks passed"
