#!/usr/bin/env bash
# Installs what Entra Setup needs on Debian/Ubuntu, skipping anything already there.
#   scripts/setup.sh          what building and running the wizard needs
#   scripts/setup.sh --test   also what the test suite needs (Xvfb, WebKitWebDriver, tauri-driver,
#                             gnome-keyring, D-Bus, xmlsec1, and scim2-server and pysaml2 from
#                             PyPI in .venv: independent peers the tests check against)
# Other systems: see "Developing on macOS or Windows" in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

runtime_pkgs=(build-essential pkg-config curl file libssl-dev libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev libdbus-1-dev)
test_pkgs=(xvfb xauth webkit2gtk-driver gnome-keyring libsecret-tools dbus dbus-x11 python3-venv xmlsec1 xclip)

if command -v apt-get >/dev/null 2>&1; then
  pkgs=("${runtime_pkgs[@]}")
  (( want_test )) && pkgs+=("${test_pkgs[@]}")
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if (( ${#missing[@]} )); then
    say "Installing system packages: ${missing[*]}"
    sudo=""
    (( EUID != 0 )) && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "Not a Debian/Ubuntu system: install the Tauri prerequisites yourself (see README.md)." >&2
fi

# Tools installed with `cargo install` land in $CARGO_HOME/bin (~/.cargo/bin by default).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust is missing. Install it with: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1 || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
  echo "Node.js 20.19 or newer is missing. Install it from https://nodejs.org or with your package manager (e.g. NodeSource)." >&2
  exit 1
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "Installing npm packages"
  # Exactly what package-lock.json lists (it names every platform's @tauri-apps/cli package),
  # or a clear failure: never a lock file rewritten on the way.
  npm ci --no-audit --no-fund
fi

if (( want_test )) && ! command -v tauri-driver >/dev/null 2>&1; then
  say "Installing tauri-driver (WebDriver for Tauri)"
  cargo install tauri-driver --locked
fi

if (( want_test )) && { [[ ! -x .venv/bin/scim2-server ]] || ! .venv/bin/python -c 'import saml2' 2>/dev/null; }; then
  say "Installing scim2-server and pysaml2 (an independent SCIM server and SAML implementation the tests check against)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet scim2-server==0.8.3 pysaml2==7.5.4
fi
