#!/usr/bin/env bash
# Cloud-mode benchmark: starts the BigQuery emulator on 127.0.0.1, runs
# `cargo bench --bench bigquery` (BigQuery → oie run → webhook + HubSpot fake → crm_sync_log), stops the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/oie-target}"
source scripts/emulators.sh
trap stop_emulators EXIT
start_bigquery_emulator
cargo bench --bench bigquery -- "$@"
