#!/bin/sh
# Make the example's PKI with openssl: a CA, the peer's server certificate for peer.ats, and the
# ingress's client certificate, all in examples/tls_bridge/certs/ (git-ignored). Safe to re-run.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/certs
mkdir -p "$dir"
cd "$dir"

days=825
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# The CA both instances trust.
key ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj '/CN=tsproxy example CA' \
  -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem

# issue NAME SUBJECT EXTENSIONS: NAME.key and NAME.pem signed by the CA.
issue() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

# The peer's server certificate: the ingress connects to peer.ats and verifies this name.
issue peer '/CN=peer.ats' 'subjectAltName=DNS:peer.ats
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature'

# The ingress's client certificate: the peer requires one (certification_level 2).
issue ingress '/CN=ingress.ats' 'extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature'

rm -f ca.srl
chmod 600 ./*.key
echo "certificates in $dir: ca.pem peer.pem peer.key ingress.pem ingress.key"
