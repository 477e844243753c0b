//! Snapshot tests: the text, JSON and SARIF reports and the explain output of a few crafted
//! pickles, compared with the expected files in tests/snapshots/.
//!
//! When an output changes on purpose (a new field, a better description in the core), review
//! the difference and regenerate the files:
//!     UPDATE_SNAPSHOTS=1 cargo test -p pickleguard-cli --test snapshots

mod common;

use common::*;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn fixture_dir() -> TempDir {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    write(
        d,
        "models/evil_global.pkl",
        &attack_global("/tmp/pickleguard-marker"),
    );
    write(
        d,
        "models/evil_stack_global.pkl",
        &attack_stack_global("/tmp/pickleguard-marker"),
    );
    write(
        d,
        "models/exec.bin",
        &attack_exec("/tmp/pickleguard-marker"),
    );
    write(d, "models/app.pkl", &app_class());
    write(d, "models/ok.pkl", &benign_dict());
    write(d, "models/list.pkl", &benign_list());
    write(d, "models/ordered.pkl", &ordered_dict());
    write(d, "models/trailing.pkl", &trailing());
    write(d, "models/config.json", &config_json());
    dir
}

fn snapshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name)
}

/// Replace what varies between machines and versions.
fn normalise(text: &str, dir: &Path) -> String {
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut t = text.replace(env!("CARGO_PKG_VERSION"), "<VERSION>");
    for d in [real.display().to_string(), dir.display().to_string()] {
        t = t.replace(&pickleguard_cli::sarif::percent_encode(&d), "<DIR>");
        t = t.replace(&d, "<DIR>");
    }
    t
}

fn check(name: &str, actual: &str) {
    let path = snapshot_path(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(8)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .collect();
        panic!(
            "snapshot {name} differs ({} vs {} lines):\n{}\n\nIf the change is intended: \
             UPDATE_SNAPSHOTS=1 cargo test -p pickleguard-cli --test snapshots",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    // --no-config belongs to the subcommand: a config file above the temporary directory
    // must not change the snapshots.
    let mut cmd = pg();
    cmd.current_dir(dir).args(args).arg("--no-config");
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        normalise(&String::from_utf8(out.stdout).unwrap(), dir),
    )
}

#[test]
fn scan_text() {
    let dir = fixture_dir();
    let (code, text) = run(dir.path(), &["scan", "models"]);
    assert_eq!(code, 1);
    check("scan.txt", &text);
}

#[test]
fn scan_json() {
    let dir = fixture_dir();
    let (code, text) = run(dir.path(), &["scan", "models", "--format", "json"]);
    assert_eq!(code, 1);
    check("scan.json", &text);
}

#[test]
fn scan_sarif() {
    let dir = fixture_dir();
    let (code, text) = run(dir.path(), &["scan", "models", "--format", "sarif"]);
    assert_eq!(code, 1);
    check("scan.sarif", &text);
}

#[test]
fn explain_text() {
    let dir = fixture_dir();
    let (code, text) = run(dir.path(), &["explain", "models/evil_global.pkl"]);
    assert_eq!(code, 1);
    check("explain_evil_global.txt", &text);
    let (code, text) = run(dir.path(), &["explain", "models/app.pkl"]);
    assert_eq!(code, 1);
    check("explain_app.txt", &text);
}

#[test]
fn learned_policy() {
    let dir = fixture_dir();
    std::fs::remove_file(dir.path().join("models/evil_global.pkl")).unwrap();
    std::fs::remove_file(dir.path().join("models/evil_stack_global.pkl")).unwrap();
    std::fs::remove_file(dir.path().join("models/exec.bin")).unwrap();
    let (code, text) = run(dir.path(), &["policy", "learn", "models"]);
    assert_eq!(code, 0);
    check("learned.toml", &text);
}
