#!/usr/bin/env bash
# Installs moto's server (a local KMS-compatible endpoint, for the KMS signer tests) into target/venv, pinned by
# script/moto-requirements.txt. Idempotent and quiet: reinstalls only when the requirements changed or the venv is
# gone. Needs Python 3 with venv and pip; called by `make test` and by the tests themselves (testkit's `kms`), so
# concurrent callers wait on one lock.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/venv"
requirements="$root/script/moto-requirements.txt"
stamp="$venv/.beatstream-moto"

mkdir -p "$root/target"
exec 9>"$root/target/.venv.lock"
flock 9

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
python=${PYTHON:-python3}
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --requirement "$requirements"
cp "$requirements" "$stamp"
