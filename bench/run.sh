#!/usr/bin/env bash
# Load benchmarks against the release binary, on loopback only, each bounded in time.
# Usage: bash bench/run.sh [DATABASE_URL]   (default: a fresh SQLite file in a temp folder)
# Needs wrk (apt-get install wrk). Results go to stdout; copy them into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
url="${1:-sqlite://$work/bench.db?mode=rwc}"
port=18555
cargo build -q --release -p server
bin="${CARGO_TARGET_DIR:-target}/release/server"
# A server database needs a vault key ring; a throwaway one suffices here.
export VAULT_KEYS="${VAULT_KEYS:-1:$(head -c 32 /dev/urandom | base64)}"
DATABASE_URL="$url" BIND_ADDR="127.0.0.1:$port" MIGRATE=true RUST_LOG=warn "$bin" &
pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

api="http://127.0.0.1:$port/graphql"
gql() { curl -s -X POST "$api" -H 'content-type: application/json' ${TOKEN:+-H "authorization: Bearer $TOKEN"} -d "$1"; }
email="bench-$$@example.com"
TOKEN=$(gql "{\"query\":\"mutation { register(input: {email: \\\"$email\\\", password: \\\"correct horse\\\"}) { token } }\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["register"]["token"])')
for i in $(seq 1 60); do
  gql "{\"query\":\"mutation { createApiKey(input: {name: \\\"k$i\\\"}) { secret } }\"}" >/dev/null
done

echo '{"query":"{ __typename }"}' > "$work/typename.json"
echo '{"query":"{ me { email profile { companyName } preferences { theme } } }"}' > "$work/me.json"
echo '{"query":"{ apiKeys(first: 50) { nodes { id name prefix permissions createdAt } pageInfo { hasNextPage endCursor } } }"}' > "$work/keys.json"
python3 -c 'print("{\"query\":\"{ me(x: " + "["*45000 + "]"*45000 + ") { email } }\"}")' > "$work/deep.json"
python3 - "$work/fragments.json" <<'PY'
import json, sys
frags = ["fragment F0 on Query { me { email } }"] + [f"fragment F{i} on Query {{ ...F{i-1} ...F{i-1} }}" for i in range(1, 40)]
json.dump({"query": "query { ...F39 } " + " ".join(frags)}, open(sys.argv[1], "w"))
PY

run() {
  local name=$1 file=$2 token=${3:-}
  echo "### $name"
  echo "one response: $(TOKEN="$token" gql "@$work/$file" | cut -c1-150)"
  BODY_FILE="$work/$file" TOKEN="$token" wrk -t2 -c16 -d10s --latency -s bench/post.lua "$api" \
    | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx"
  echo
}
run "anonymous { __typename }" typename.json
run "me with profile and preferences (session auth, 5 statements)" me.json "$TOKEN"
run "apiKeys(first: 50) of 60 keys" keys.json "$TOKEN"
run "hostile: 45k-deep argument value, 90 KB (refused)" deep.json
run "hostile: 2^39 doubling fragment chain (refused)" fragments.json
echo "### server RSS after load: $(ps -o rss= -p "$pid" | tr -d ' ') KiB"
