#!/usr/bin/env bash
# `oie backup` of a large embedded store while `oie run` takes events: fills oie.db with
# SIZE_MB of events (default 1024), then runs wrk on POST /track for DURATION seconds twice —
# alone, then with `oie backup` started beside it — and prints the backup's time and rate and
# the ingest rates without and with it (their ratio). Bounded by DURATION and the fill.
SIZE_MB="${SIZE_MB:-1024}"
DURATION="${DURATION:-15}"
CONNECTIONS="${CONNECTIONS:-16}"
source "$(dirname "$0")/lib.sh"
# The schema, by oie itself (started once); then rows straight into SQLite (an import of this
# size through /track would take minutes).
start_oie
stop_oie
python3 - "$dir/data/oie.db" "$SIZE_MB" <<'PY'
import os, sqlite3, sys, time
path, target = sys.argv[1], int(sys.argv[2]) * 1024 * 1024
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=OFF")
pad = "x" * 300
now = int(time.time() * 1000)
n = 0
while os.path.getsize(path) + os.path.getsize(path + "-wal") < target:
    rows = [(f"f{n+i}", f"v{(n+i) % 50000}", f"s{(n+i) // 20}", "pageview", now - (n + i), "https://acme.example/docs", "/docs",
             pad, now - (n + i)) for i in range(20000)]
    db.executemany("INSERT INTO events (eventId, visitorId, sessionId, eventType, timestamp, url, path, title, receivedAt) VALUES (?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    n += len(rows)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
# Counted as scored already: the daemon's first scoring run would otherwise take the whole
# first measurement.
db.execute("INSERT OR REPLACE INTO scoring_state (name, value) SELECT 'events_rowid', MAX(rowid) FROM events")
db.commit()
print(f"filled with {n} events", file=sys.stderr)
PY
size=$(stat -c %s "$dir/data/oie.db")
start_oie
rate() { awk '/^ACCEPTED_EVENTS/ {a=$2} /^SECONDS/ {s=$2} END {printf "%.0f", a / s}' <<< "$1"; }
alone=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/track.lua "http://$addr/track")
start=$(date +%s%3N)
("$OIE" backup "$dir/backup" --config "$dir/config.toml" > "$dir/backup.out"; date +%s%3N > "$dir/backup.end") &
backup=$!
beside=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/track.lua "http://$addr/track")
wait "$backup"
end=$(cat "$dir/backup.end")
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
copied=$(du -cb "$dir"/backup/*.db | tail -1 | cut -f1)
a=$(rate "$alone"); b=$(rate "$beside")
echo "store: $((size / 1048576)) MiB of events; backup: $((copied / 1048576)) MiB in ${secs} s ($(awk -v c="$copied" -v s="$secs" 'BEGIN { printf "%.0f", c / 1048576 / s }') MiB/s), integrity checked"
echo "POST /track, ${CONNECTIONS} connections, ${DURATION} s each: ${a} events/s alone, ${b} events/s beside the backup ($(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')x)"
