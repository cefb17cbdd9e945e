# Installs and starts the local engines the tests use; sourced by scripts/test.
# Everything listens on 127.0.0.1 and is stopped when the calling shell exits.

OIE_VENV="${OIE_VENV:-/var/tmp/oie-venv}"
OIE_EMU_HOME="${OIE_EMU_HOME:-/var/tmp/oie-emu-home}"
EMULATOR_PIDS=()

# A Python venv with the BigQuery emulator, its DuckDB and the spatial extension it loads at
# start-up (installed from the PyPI wheel, since nothing can be downloaded at run time).
install_bigquery_emulator() {
  if [ ! -x "$OIE_VENV/bin/bqemulator" ]; then
    python3 -m venv "$OIE_VENV"
    "$OIE_VENV/bin/pip" install --quiet --disable-pip-version-check \
      bqemulator==1.4.0 duckdb==1.5.5 duckdb-extension-spatial==1.5.5 numpy
  fi
  mkdir -p "$OIE_EMU_HOME"
  HOME="$OIE_EMU_HOME" "$OIE_VENV/bin/python" - <<'PY'
import duckdb, duckdb_extension_spatial, pathlib
ext = pathlib.Path(duckdb_extension_spatial.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
duckdb.sql(f"INSTALL '{ext}'")
PY
}

# Vendors' own client libraries the tests check oie's output with (TESTING.md): slack-sdk.
install_reference_clients() {
  [ -x "$OIE_VENV/bin/python" ] || python3 -m venv "$OIE_VENV"
  if ! "$OIE_VENV/bin/python" -c 'import slack_sdk' > /dev/null 2>&1; then
    "$OIE_VENV/bin/pip" install --quiet --disable-pip-version-check slack-sdk==3.48.0
  fi
  export OIE_VENV
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_ready() { # url, seconds
  local deadline=$((SECONDS + $2))
  until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" > /dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "not ready after $2 s: $1" >&2
      return 1
    fi
    sleep 0.2
  done
}

start_bigquery_emulator() {
  install_bigquery_emulator
  local rest grpc log
  rest=$(free_port)
  grpc=$(free_port)
  log="${TMPDIR:-/tmp}/oie-bqemulator-$rest.log"
  HOME="$OIE_EMU_HOME" "$OIE_VENV/bin/bqemulator" start --rest-host 127.0.0.1 --rest-port "$rest" \
    --grpc-host 127.0.0.1 --grpc-port "$grpc" --project test-proj --log-level warning > "$log" 2>&1 &
  EMULATOR_PIDS+=($!)
  wait_ready "http://127.0.0.1:$rest/readyz" 60 || { cat "$log" >&2; return 1; }
  export OIE_BQ_EMULATOR="http://127.0.0.1:$rest"
  echo "BigQuery emulator on $OIE_BQ_EMULATOR"
}

# The cloudbox Pub/Sub emulator (gRPC for oie, REST for tests to create topics and publish), in
# the same venv; scripts/pubsub_emulator.py explains how it is loaded on Python 3.11.
install_pubsub_emulator() {
  install_bigquery_emulator
  if ! "$OIE_VENV/bin/python" -c 'import cloudbox, fastapi, uvicorn, httpx, google.pubsub_v1' > /dev/null 2>&1; then
    "$OIE_VENV/bin/pip" install --quiet --disable-pip-version-check google-cloud-pubsub fastapi uvicorn httpx
    "$OIE_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --ignore-requires-python cloudbox==0.2.3
  fi
}

start_pubsub_emulator() {
  install_pubsub_emulator
  local grpc rest log
  grpc=$(free_port)
  rest=$(free_port)
  log="${TMPDIR:-/tmp}/oie-pubsub-$rest.log"
  "$OIE_VENV/bin/python" scripts/pubsub_emulator.py "$grpc" "$rest" > "$log" 2>&1 &
  EMULATOR_PIDS+=($!)
  wait_ready "http://127.0.0.1:$rest/v1/projects/test-proj/topics" 30 || { cat "$log" >&2; return 1; }
  export OIE_PUBSUB_EMULATOR="http://127.0.0.1:$grpc"
  export OIE_PUBSUB_REST="http://127.0.0.1:$rest"
  echo "Pub/Sub emulator: gRPC $OIE_PUBSUB_EMULATOR, REST $OIE_PUBSUB_REST"
}

stop_emulators() {
  for pid in "${EMULATOR_PIDS[@]}"; do
    kill "$pid" 2> /dev/null || true
  done
  for pid in "${EMULATOR_PIDS[@]}"; do
    wait "$pid" 2> /dev/null || true
  done
}

# Debian's Chromium for the browser tests (never a browser download).
install_chromium() {
  if ! command -v chromium > /dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
  fi
  export OIE_CHROMIUM="$(command -v chromium)"
}
