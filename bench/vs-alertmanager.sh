#!/usr/bin/env bash
# oie against Alertmanager, side by side on this machine: N notifications to the same loopback
# webhook receiver (fakes' oie-bench-receiver, which times the first and the N-th request).
#
# - Alertmanager (Debian's prometheus-alertmanager): N alerts posted to /api/v2/alerts, one
#   group each (group_by alertname), group_wait 0s; timed from the first POST to the N-th
#   notification. No notification is durable: Alertmanager keeps them in memory.
# - oie run: N burning leads imported into a fresh store, the shipped config.toml with its
#   route sent to one webhook connector (every other setting as shipped); timed from starting
#   `oie run` (process start included) to the N-th delivery, then checked durable: the outbox
#   must hold N delivered rows after SIGTERM.
#
# Prints each run's rates, their ratio and both peak RSS (VmHWM), then the median ratio.
# Bounded: every wait gives up after TIMEOUT seconds. N=20000 RUNS=3 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-20000}"
RUNS="${RUNS:-3}"
TIMEOUT="${TIMEOUT:-120}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/oie-target}"
AM=/usr/bin/prometheus-alertmanager
if [ ! -x "$AM" ] || ! command -v sqlite3 > /dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager sqlite3 > /dev/null
fi
cargo build --release --quiet -p oie -p oie-fakes --bins
OIE="$CARGO_TARGET_DIR/release/oie"
RECEIVER="$CARGO_TARGET_DIR/release/oie-bench-receiver"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until FILE has a line starting with WORD; prints that line.
wait_line() { # file word
  local deadline=$((SECONDS + TIMEOUT))
  until grep -q "^$2 " "$1" 2> /dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out after ${TIMEOUT}s waiting for '$2' in $1" >&2
      return 1
    fi
    sleep 0.02
  done
  grep "^$2 " "$1" | head -1
}

# Starts a receiver expecting N requests; sets RX_URL and RX_OUT.
start_receiver() { # name
  RX_OUT="$work/$1-receiver.out"
  "$RECEIVER" --expect "$N" > "$RX_OUT" &
  pids+=($!)
  RX_URL="http://$(wait_line "$RX_OUT" listening | cut -d' ' -f2)/hook"
}

peak_rss_mb() { # pid
  awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

run_alertmanager() {
  start_receiver am
  local port dir
  port=$(free_port)
  dir="$work/am"
  mkdir -p "$dir"
  cat > "$dir/am.yml" <<YAML
route:
  receiver: hook
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: $RX_URL
        send_resolved: false
YAML
  "$AM" --config.file="$dir/am.yml" --storage.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= --log.level=warn \
    > "$dir/am.log" 2>&1 &
  local am=$!
  pids+=($am)
  local deadline=$((SECONDS + 30))
  until curl -sf "http://127.0.0.1:$port/-/ready" > /dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$dir/am.log" >&2; return 1; }
    sleep 0.1
  done
  local t0
  t0=$(now_ms)
  python3 - "$port" "$N" <<'PY'
import json, sys, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
for start in range(0, n, 1000):
    alerts = [{"labels": {"alertname": f"lead-{i:06d}", "severity": "burning"},
               "annotations": {"summary": f"lead {i:06d} is burning"}}
              for i in range(start, min(start + 1000, n))]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/alerts",
                                 data=json.dumps(alerts).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=30).read()
PY
  local done_line nth
  done_line=$(wait_line "$RX_OUT" done)
  nth=$(cut -d' ' -f3 <<< "$done_line")
  AM_RSS=$(peak_rss_mb "$am")
  AM_SECS=$(awk -v a="$t0" -v b="$nth" 'BEGIN { printf "%.2f", (b - a) / 1000 }')
  kill "$am"
  wait "$am" 2> /dev/null || true
}

run_oie() {
  start_receiver oie
  local dir="$work/oie"
  mkdir -p "$dir"
  # The shipped config, with its route sent to one webhook connector; nothing else changed.
  sed -e 's/^to = \["hot-leads-file"\]/to = ["hook"]/' \
      -e 's/^listen = "127.0.0.1:8787"/listen = "127.0.0.1:0"/' \
      -e 's/^log_level = "info"/log_level = "warn"/' config.toml > "$dir/config.toml"
  grep -q '^to = \["hook"\]' "$dir/config.toml"
  cat >> "$dir/config.toml" <<TOML

[connectors.hook]
kind = "webhook"
url = "$RX_URL"
TOML
  python3 - "$dir/leads.jsonl" "$N" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({"visitorId": f"v{i:06d}", "email": f"lead{i:06d}@acme.example",
                            "firstName": "Jane", "lastName": f"Doe{i}", "company": "Acme",
                            "intentScore": 90, "engagementLevel": "burning"}) + "\n")
PY
  "$OIE" leads import "$dir/leads.jsonl" --config "$dir/config.toml" > /dev/null
  local t0
  t0=$(now_ms)
  "$OIE" run --config "$dir/config.toml" 2> "$dir/oie.log" &
  local oie=$!
  pids+=($oie)
  local done_line nth
  done_line=$(wait_line "$RX_OUT" done)
  nth=$(cut -d' ' -f3 <<< "$done_line")
  OIE_RSS=$(peak_rss_mb "$oie")
  OIE_SECS=$(awk -v a="$t0" -v b="$nth" 'BEGIN { printf "%.2f", (b - a) / 1000 }')
  kill -TERM "$oie"
  wait "$oie"
  local delivered
  delivered=$(sqlite3 "$dir/data/outbox.db" "SELECT COUNT(*) FROM deliveries WHERE connector = 'hook' AND state = 'delivered'")
  if [ "$delivered" != "$N" ]; then
    echo "oie: $delivered of $N deliveries recorded as delivered" >&2
    return 1
  fi
}

echo "N = $N notifications to one loopback receiver, $RUNS runs, $(nproc) cores"
printf '%-4s %14s %10s %14s %10s %7s\n' run "alertmanager/s" "AM RSS MB" "oie/s" "oie RSS MB" ratio
ratios=()
for run in $(seq "$RUNS"); do
  run_alertmanager
  run_oie
  am_rate=$(awk -v n="$N" -v s="$AM_SECS" 'BEGIN { printf "%.0f", n / s }')
  oie_rate=$(awk -v n="$N" -v s="$OIE_SECS" 'BEGIN { printf "%.0f", n / s }')
  ratio=$(awk -v a="$am_rate" -v o="$oie_rate" 'BEGIN { printf "%.2f", o / a }')
  ratios+=("$ratio")
  printf '%-4s %14s %10s %14s %10s %7s\n' "$run" "$am_rate" "$AM_RSS" "$oie_rate" "$OIE_RSS" "${ratio}x"
  rm -rf "$work/am" "$work/oie"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median ratio oie / alertmanager: ${median}x (target ≥ 2x; oie's figure includes its start-up and a durable outbox)"
