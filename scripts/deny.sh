#!/usr/bin/env bash
# cargo deny against deny.toml. The RustSec advisory database is fetched into
# ~/.cache/entra-setup/advisory-db when github.com is reachable; otherwise (a machine that only
# reaches package registries) the snapshot committed in .ci/advisory-db.tar.gz is used, and its
# date is printed so a stale check is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools installed with `cargo install` land in $CARGO_HOME/bin (~/.cargo/bin by default).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "Installing cargo-deny"
  cargo install cargo-deny --locked --version 0.20.2
fi
db_root="$HOME/.cache/entra-setup/advisory-db"
# cargo-deny keeps the database of https://github.com/rustsec/advisory-db under this name.
db="$db_root/advisory-db-3157b0e258782691"
offline=()
if timeout 20 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  echo "Advisories: fetching the current RustSec database"
else
  offline=(--offline)
  snapshot=.ci/advisory-db.tar.gz
  stamp=$(sha256sum "$snapshot" | cut -c1-16)
  if [[ ! -f "$db/.snapshot-$stamp" ]]; then
    rm -rf "$db" && mkdir -p "$db_root"
    tar -xzf "$snapshot" -C "$db_root" && mv "$db_root/advisory-db" "$db"
    (cd "$db" && git init -q && git add -A &&
      GIT_AUTHOR_DATE="$(cat SNAPSHOT_DATE)" GIT_COMMITTER_DATE="$(cat SNAPSHOT_DATE)" \
        git -c user.name=snapshot -c user.email=snapshot@localhost commit -qm "RustSec advisory-db snapshot" &&
      touch ".snapshot-$stamp")
  fi
  echo "Advisories: github.com is out of reach; using the RustSec snapshot of $(cat "$db/SNAPSHOT_DATE") (.ci/advisory-db.tar.gz)"
fi
# cargo deny --offline needs the crates of every platform in Cargo.lock; a bare machine has
# none of them yet, so fetch them first (all targets, exactly the locked versions).
cargo fetch --locked
cargo deny "${offline[@]}" check
