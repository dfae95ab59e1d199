#!/usr/bin/env bash
# auth.sh — `quarrel serve` access control end to end: API keys (HTTP, WebSocket, rotation,
# revocation, SIGHUP/file-change reload), per-key rpm/tpm and per-IP limits, CORS, security
# headers, metrics, TLS with a self-signed certificate. The checks live in auth_client.py
# (python3 stdlib + the openssl CLI); every wait there is bounded.
set -euo pipefail
export QUARREL_BIN=${QUARREL_BIN:-build/quarrel}
export QUARREL_SHARED=${QUARREL_SHARED:-../shared}
exec timeout 120 python3 "$(dirname "$0")/auth_client.py"
