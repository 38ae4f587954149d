//! Embeds every provider profile in providers/ into the binary, so adding a provider is adding a
//! data file: no Rust changes, and installers need no extra files.
use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read at run time: a build script compiled for another checkout (a shared target dir)
    // must still read this checkout's profiles.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let dir = Path::new(&manifest).join("../../providers");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    // By name without the extension: `file-transfer` before `file-transfer-oauth`.
    entries.sort_by_key(|p| p.file_stem().map(std::ffi::OsStr::to_os_string));
    let mut code = String::from("/// Provider profiles compiled in from providers/*.toml: (file name, contents).\npub const BUILTIN: &[(&str, &str)] = &[\n");
    for p in &entries {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            p.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("providers.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
