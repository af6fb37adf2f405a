#!/bin/sh
# Make the example's PKI with openssl in examples/sni_router/certs/ (git-ignored): a CA, the proxy's
# certificate (used when it terminates TLS), and one certificate per backend. Safe to re-run.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/certs
mkdir -p "$dir"
cd "$dir"

days=825
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj '/CN=tsproxy sni_router example CA' \
  -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem

# issue NAME CN SANS: NAME.key and NAME.pem (a server certificate) signed by the CA.
issue() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

issue proxy proxy.example 'DNS:proxy.example,DNS:plain.example,DNS:pb.example'
issue foo foo.example 'DNS:foo.example,DNS:foo.backend,DNS:admin.example'
issue apps '*.apps.example' 'DNS:*.apps.example,DNS:*.apps.backend'

rm -f ca.srl
chmod 600 ./*.key
echo "certificates in $dir: ca.pem proxy.pem foo.pem apps.pem (and keys)"
