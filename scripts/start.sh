#!/usr/bin/env bash
# Installs what is missing, builds the wizard and opens it. The welcome screen offers
# "Try the demo tenant" (a simulated tenant built into the app) as well as a real sign-in.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== Building the UI"
npm run build --silent
echo "== Building and starting Entra Setup"
exec cargo run --quiet -p entra-setup-app --features custom-protocol
