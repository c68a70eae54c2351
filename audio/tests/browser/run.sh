#!/usr/bin/env bash
# Checks the chunks in a real browser (index.html says what): headless Chromium against a server on 127.0.0.1.
# A manual check, not part of `cargo test`; needs Debian's chromium (apt-get install chromium) and python3.
# Run from the repository root: audio/tests/browser/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
port=${PORT:-18765}
cleanup() {
    [[ -n ${browser:-} ]] && kill -- "-$browser" 2>/dev/null
    [[ -n ${server:-} ]] && kill "$server" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

BEATSTREAM_BROWSER_DIR=$dir cargo test -q -p beatstream-audio --test it browser_data -- --ignored >/dev/null
cp "$here/index.html" "$dir/"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dir" 2>"$dir/requests.log" >/dev/null &
server=$!
sleep 1
# In a session of its own, so the cleanup ends the browser's helper processes with it.
setsid chromium --headless --no-sandbox --disable-gpu "http://127.0.0.1:$port/index.html" >/dev/null 2>&1 &
browser=$!
# The page reports DONE when it has checked everything; give it a minute at most.
for _ in $(seq 60); do grep -a -q 'GET /log?DONE' "$dir/requests.log" && break; sleep 1; done
results=$(grep -a -o 'GET /log?[^ ]*' "$dir/requests.log" |
    python3 -c 'import sys, urllib.parse; [print(urllib.parse.unquote(l.strip()[9:])) for l in sys.stdin]')
echo "$results"
grep -q '^DONE$' <<<"$results" && ! grep -q '^FAIL' <<<"$results"
