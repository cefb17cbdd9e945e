#!/usr/bin/env bash
# Load benchmark of POST /track (embedded mode): wrk on loopback with 5-event batches; prints
# accepted events per second and latency, then stops oie (which writes every accepted event)
# and checks that SQLite holds exactly the accepted events. Bounded: DURATION seconds.
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
source "$(dirname "$0")/lib.sh"
command -v sqlite3 > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 > /dev/null; }
start_oie
out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/track.lua "http://$addr/track")
stop_oie
accepted=$(awk '/^ACCEPTED_EVENTS/ {print $2}' <<< "$out")
busy=$(awk '/^BUSY_REQUESTS/ {print $2}' <<< "$out")
other=$(awk '/^OTHER_REQUESTS/ {print $2}' <<< "$out")
p99=$(awk '/^P99_MS/ {print $2}' <<< "$out")
p50=$(awk '/^P50_MS/ {print $2}' <<< "$out")
secs=$(awk '/^SECONDS/ {print $2}' <<< "$out")
stored=$(sqlite3 "$dir/data/oie.db" "SELECT COUNT(*) FROM events")
rate=$(awk -v a="$accepted" -v s="$secs" 'BEGIN { printf "%.0f", a / s }')
echo "POST /track, 5-event batches, $CONNECTIONS connections, ${secs}s on loopback:"
echo "  accepted events/s: $rate (target ≥ 20,000)"
echo "  latency p50 ${p50} ms, p99 ${p99} ms (target p99 < 20 ms)"
echo "  503 (busy) answers: $busy; other non-2xx: $other"
echo "  events accepted: $accepted; events in SQLite after SIGTERM: $stored"
if [ "$accepted" != "$stored" ]; then
  echo "MISMATCH: accepted events were lost" >&2
  exit 1
fi
