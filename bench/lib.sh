# Shared by the benchmarks that load `oie run`'s ingest API (sourced): a release build, wrk, a
# throwaway data folder with an embedded-mode config, and a daemon to start in it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/oie-target}"
command -v wrk > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk > /dev/null; }
cargo build --release --quiet
OIE="$CARGO_TARGET_DIR/release/oie"
dir=$(mktemp -d)
pid=""
trap 'kill "$pid" 2> /dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/config.toml" <<TOML
[engine]
log_level = "warn"
[server]
listen = "127.0.0.1:0"
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["out"]
[connectors.out]
kind = "file"
path = "data/out.jsonl"
TOML

# Starts `oie run` on "$dir" and waits for its address: sets pid and addr.
start_oie() {
  rm -f "$dir/data/server.addr"
  "$OIE" run --config "$dir/config.toml" &
  pid=$!
  for _ in $(seq 100); do [ -s "$dir/data/server.addr" ] && break; sleep 0.1; done
  addr=$(cat "$dir/data/server.addr")
}

# Stops it, letting it write what it accepted.
stop_oie() {
  kill -TERM "$pid"
  wait "$pid" || true
}
