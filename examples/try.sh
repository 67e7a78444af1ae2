#!/usr/bin/env bash
# Install edxml-gateway into ./.venv and walk through what it does today: a development
# PKI, signing an edXML document, validating it, and refusing a tampered copy.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet .
gw=.venv/bin/edxml-gateway
work=$(mktemp -d "${TMPDIR:-/tmp}/edxml-try.XXXXXX")

echo "== a development CA and a certificate for UBND tỉnh Tiền Giang (000.00.00.H58)"
$gw pki init --dir "$work/pki"
$gw pki issue --dir "$work/pki" --agency 000.00.00.H58 --name "UBND tỉnh Tiền Giang"

echo "== sign examples/document.edxml"
$gw sign --key "$work/pki/000.00.00.H58.key" --cert "$work/pki/000.00.00.H58.pem" \
    examples/document.edxml "$work/document.signed.edxml"

echo "== validate it: strict schema, structure, signature against the CA"
$gw validate --strict --trust "$work/pki/ca.pem" "$work/document.signed.edxml"

echo "== change one word of the subject and validate again (must be refused)"
sed 's/triển khai/hủy bỏ/' "$work/document.signed.edxml" > "$work/document.tampered.edxml"
if $gw validate --trust "$work/pki/ca.pem" "$work/document.tampered.edxml"; then
    echo "tampering went unnoticed" >&2
    exit 1
fi
echo "== done; files in $work"
