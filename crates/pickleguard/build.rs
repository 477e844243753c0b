//! The shipped policies (`policies/*.toml`) are data the core loads at start-up. Parsing
//! ~140 KB of TOML took ~3 ms of every CLI run, so they are converted to JSON here (serde
//! reads the same structures from either) and parsed with serde_json at run time. The TOML
//! files stay the source: a syntax error in them fails the build.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed={}", dir.display());
    for name in ["dangerous", "aliases", "ml", "ml_corpus"] {
        let src = dir.join(format!("{name}.toml"));
        println!("cargo:rerun-if-changed={}", src.display());
        let text =
            std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let value: toml::Value =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let json = serde_json::to_string(&value).expect("TOML values are JSON values");
        std::fs::write(Path::new(&out).join(format!("{name}.json")), json)
            .unwrap_or_else(|e| panic!("{out}: {e}"));
    }
}
