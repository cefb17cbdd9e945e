#!/usr/bin/env bash
# Pub/Sub end-to-end benchmark: starts the Pub/Sub emulator on 127.0.0.1, runs
# `cargo bench --bench pubsub` (publish → oie run → webhook receiver), stops the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/oie-target}"
source scripts/emulators.sh
trap stop_emulators EXIT
start_pubsub_emulator
cargo bench --bench pubsub -- "$@"
