#!/usr/bin/env bash
# The installer as an admin gets it: builds the .deb with the Tauri CLI (release profile),
# installs it with dpkg, starts the *installed* program under Xvfb until the welcome screen
# shows (screenshots in light and dark, axe-core), then removes the package again. Prints the
# installer's and the program's sizes. Needs root (dpkg); scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools installed with `cargo install` land in $CARGO_HOME/bin (~/.cargo/bin by default).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
target=${CARGO_TARGET_DIR:-$PWD/target}
sudo=""
(( EUID != 0 )) && sudo="sudo"

rm -f "$target"/release/bundle/deb/*.deb
npx tauri build --bundles deb --ci -- --locked --quiet
deb=$(ls "$target"/release/bundle/deb/*.deb)
pkg=$(dpkg-deb -f "$deb" Package)

if dpkg -s "$pkg" >/dev/null 2>&1; then
  echo "$pkg is already installed on this machine; remove it first (dpkg -r $pkg)" >&2
  exit 1
fi
$sudo dpkg -i "$deb" >/dev/null
trap '$sudo dpkg -r "$pkg" >/dev/null' EXIT
bin=$(dpkg -L "$pkg" | grep '^/usr/bin/' | head -1)
echo "Installed $pkg: $bin, $(dpkg -L "$pkg" | wc -l) paths"

xvfb-run -a -s "-screen 0 1280x900x24" node tests/e2e/installed.e2e.mjs "$bin"

deb_size=$(stat -c %s "$deb")
bin_size=$(stat -c %s "$bin")
awk -v n="$(basename "$deb")" -v d="$deb_size" -v b="$bin_size" \
  'BEGIN { printf "Installer %s: %d bytes (%.1f MB); installed program: %d bytes (%.1f MB)\n", n, d, d / 1e6, b, b / 1e6 }' 
if (( deb_size > 10000000 )); then
  echo "The installer is over the 10 MB target" >&2
  exit 1
fi

$sudo dpkg -r "$pkg" >/dev/null
trap - EXIT
if [[ -e "$bin" ]]; then
  echo "$bin is still there after removing $pkg" >&2
  exit 1
fi
echo "Removed $pkg; $bin is gone"
