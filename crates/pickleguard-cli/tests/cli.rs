//! The command line end to end: every flag and exit code.

mod common;

use common::*;
use predicates::prelude::*;
use predicates::str::contains;
use std::path::Path;
use tempfile::TempDir;

fn tree() -> (TempDir, Vec<String>, String) {
    let dir = TempDir::new().unwrap();
    let marker = dir.path().join("PWNED").display().to_string();
    let attacks = mixed_tree(dir.path(), &marker);
    (dir, attacks, marker)
}

fn scan_json(dir: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let out = pg()
        .current_dir(dir)
        .args(["scan", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap(), json(&out.stdout))
}

// ---------------------------------------------------------------- basics

#[test]
fn version_and_help() {
    pg().arg("--version")
        .assert()
        .success()
        .stdout(contains(env!("CARGO_PKG_VERSION")));
    pg().arg("--help").assert().success().stdout(
        contains("scan")
            .and(contains("explain"))
            .and(contains("Exit codes")),
    );
    pg().args(["scan", "--help"]).assert().success().stdout(
        contains("--fail-on")
            .and(contains("--include"))
            .and(contains("--jobs")),
    );
    pg().args(["policy", "learn", "--help"]).assert().success();
}

#[test]
fn usage_errors_exit_2() {
    pg().assert().code(2);
    pg().arg("frobnicate").assert().code(2);
    pg().arg("scan").assert().code(2).stderr(contains("PATH"));
    pg().args(["scan", "--mode", "paranoid", "."])
        .assert()
        .code(2);
    pg().args(["scan", "--fail-on", "SEVERE", "."])
        .assert()
        .code(2);
    pg().args(["scan", "--format", "xml", "."]).assert().code(2);
    pg().args(["scan", "--jobs", "0", "."]).assert().code(2);
    pg().args(["scan", "--jobs", "100000", "."])
        .assert()
        .code(2);
    pg().args(["scan", "--allow", "nocolon", "."])
        .assert()
        .code(2)
        .stderr(contains("MODULE:NAME"));
    pg().args(["scan", "--include", "[", "."]).assert().code(2);
}

#[test]
fn completions_for_each_shell() {
    for (shell, needle) in [
        ("bash", "complete"),
        ("zsh", "#compdef"),
        ("fish", "complete -c pickleguard"),
    ] {
        pg().args(["completions", shell])
            .assert()
            .success()
            .stdout(contains(needle).and(contains("scan")));
    }
    pg().args(["completions", "tcsh"]).assert().code(2);
}

// ---------------------------------------------------------------- exit codes and verdicts

#[test]
fn safe_file_exits_0_unsafe_exits_1() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "ok.pkl", &benign_dict());
    write(dir.path(), "evil.pkl", &attack_global("/nonexistent/m"));
    pg().current_dir(dir.path())
        .args(["scan", "ok.pkl"])
        .assert()
        .code(0)
        .stdout(contains("ok.pkl: SAFE"));
    pg().current_dir(dir.path())
        .args(["scan", "evil.pkl"])
        .assert()
        .code(1)
        .stdout(
            contains("evil.pkl: UNSAFE")
                .and(contains("DANGEROUS_IMPORT"))
                .and(contains("posix.system")),
        );
}

#[test]
fn mixed_tree_reports_exactly_the_attack_files() {
    let (dir, attacks, marker) = tree();
    let (code, doc) = scan_json(dir.path(), &["."]);
    assert_eq!(code, 1);
    assert_eq!(unsafe_paths(&doc), attacks);
    assert_eq!(doc["summary"]["files"], 8);
    assert_eq!(doc["summary"]["unsafe"], 3);
    assert_eq!(doc["summary"]["errors"], 0);
    // Sorted by path, every file (no extension filter).
    let paths = all_paths(&doc);
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(paths.contains(&"./README.md".to_string()));
    // Nothing was executed.
    assert!(!Path::new(&marker).exists());
}

#[test]
fn io_errors_exit_2_and_the_rest_is_still_reported() {
    let (dir, attacks, _) = tree();
    let (code, doc) = scan_json(dir.path(), &[".", "missing.pkl"]);
    assert_eq!(code, 2);
    assert_eq!(doc["summary"]["errors"], 1);
    assert_eq!(doc["summary"]["unsafe"], 3);
    let missing = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "missing.pkl")
        .unwrap();
    assert_eq!(missing["is_safe"], false);
    assert_eq!(missing["format"], "unreadable");
    assert!(missing["error"].as_str().unwrap().contains("No such file"));
    let mut u = unsafe_paths(&doc);
    u.retain(|p| p != "missing.pkl");
    assert_eq!(u, attacks);
    // Text output names the error too; with nothing else to read, nothing was scanned.
    pg().current_dir(dir.path())
        .args(["scan", "missing.pkl"])
        .assert()
        .code(3)
        .stdout(contains("missing.pkl: ERROR"));
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    write(dir.path(), "ok.pkl", &benign_dict());
    write(dir.path(), "locked.pkl", &benign_dict());
    let locked = dir.path().join("locked.pkl");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_ok() {
        // Running as root: permissions do not stop reads. A dangling link followed on purpose
        // is the unreadable file instead.
        std::fs::remove_file(&locked).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), &locked).unwrap();
    }
    let (code, doc) = scan_json(dir.path(), &[".", "--follow-symlinks"]);
    assert_eq!(code, 2);
    assert_eq!(doc["summary"]["errors"], 1);
    assert_eq!(doc["summary"]["files"], 2);
    assert_eq!(doc["files"][1]["path"], "./ok.pkl");
    assert_eq!(doc["files"][1]["is_safe"], true);
}

#[test]
fn stdin_dash() {
    pg().args(["scan", "-"])
        .write_stdin(attack_stack_global("/nonexistent/m"))
        .assert()
        .code(1)
        .stdout(contains("<stdin>: UNSAFE").and(contains("os.system")));
    pg().args(["scan", "-", "--format", "json"])
        .write_stdin(benign_dict())
        .assert()
        .code(0)
        .stdout(contains("\"path\": \"<stdin>\""));
}

// ---------------------------------------------------------------- modes and policy

#[test]
fn modes() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "od.pkl", &ordered_dict());
    write(dir.path(), "evil.pkl", &attack_global("/nonexistent/m"));
    let run = |args: &[&str]| {
        pg().current_dir(dir.path())
            .arg("scan")
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
            .unwrap()
    };
    assert_eq!(run(&["od.pkl"]), 0, "ml allows OrderedDict");
    assert_eq!(run(&["od.pkl", "--mode", "ml"]), 0);
    assert_eq!(run(&["od.pkl", "--mode", "strict"]), 1);
    assert_eq!(run(&["od.pkl", "--mode", "allowlist"]), 1);
    assert_eq!(
        run(&[
            "od.pkl",
            "--mode",
            "allowlist",
            "--allow",
            "collections:OrderedDict"
        ]),
        0
    );
    assert_eq!(
        run(&["od.pkl", "--mode", "allowlist", "--allow", "collections:*"]),
        0
    );
    assert_eq!(
        run(&[
            "od.pkl",
            "--mode",
            "allowlist",
            "--allow",
            "collections:deque"
        ]),
        1
    );
    assert_eq!(
        run(&["evil.pkl", "--mode", "audit"]),
        0,
        "audit reports, never fails"
    );
    pg().current_dir(dir.path())
        .args(["scan", "evil.pkl", "--mode", "audit"])
        .assert()
        .code(0)
        .stdout(contains("UNSAFE").and(contains("audit mode")));
    // An allow entry never makes a dangerous call safe by wildcard.
    assert_eq!(run(&["evil.pkl", "--allow", "posix:*"]), 1);
    // strict: --allow cannot help, and says so.
    pg().current_dir(dir.path())
        .args([
            "scan",
            "od.pkl",
            "--mode",
            "strict",
            "--allow",
            "collections:*",
        ])
        .assert()
        .code(1)
        .stderr(contains("no effect in strict"));
}

#[test]
fn fail_on_levels() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "app.pkl", &app_class());
    write(dir.path(), "trail.pkl", &trailing());
    let code = |args: &[&str]| {
        pg().current_dir(dir.path())
            .arg("scan")
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
            .unwrap()
    };
    // An unknown application class: MEDIUM.
    assert_eq!(code(&["app.pkl"]), 1);
    assert_eq!(code(&["app.pkl", "--fail-on", "MEDIUM"]), 1);
    assert_eq!(code(&["app.pkl", "--fail-on", "HIGH"]), 0);
    assert_eq!(code(&["app.pkl", "--fail-on", "critical"]), 0);
    // Trailing bytes: LOW, fails only with --fail-on LOW.
    assert_eq!(code(&["trail.pkl"]), 0);
    assert_eq!(code(&["trail.pkl", "--fail-on", "LOW"]), 1);
    let (_, doc) = scan_json(dir.path(), &["trail.pkl", "--fail-on", "LOW"]);
    assert_eq!(doc["fail_on"], "LOW");
    assert_eq!(doc["files"][0]["risk_level"], "LOW");
}

#[test]
fn policy_file_flag() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "app.pkl", &app_class());
    write(
        dir.path(),
        "p.toml",
        b"[[allow]]\nmodule = \"myapp.models\"\nnew = [\"UserModel\"]\n",
    );
    write(dir.path(), "bad.toml", b"[[allow]\nmodule = ");
    pg().current_dir(dir.path())
        .args(["scan", "app.pkl"])
        .assert()
        .code(1);
    pg().current_dir(dir.path())
        .args(["scan", "app.pkl", "--policy", "p.toml"])
        .assert()
        .code(0);
    pg().current_dir(dir.path())
        .args([
            "scan",
            "app.pkl",
            "--mode",
            "allowlist",
            "--policy",
            "p.toml",
        ])
        .assert()
        .code(0);
    pg().current_dir(dir.path())
        .args(["scan", "app.pkl", "--policy", "bad.toml"])
        .assert()
        .code(2)
        .stderr(contains("bad.toml"));
    pg().current_dir(dir.path())
        .args(["scan", "app.pkl", "--policy", "nope.toml"])
        .assert()
        .code(2);
    // A misspelt key or an unknown format version is an error naming it, never ignored.
    for (name, text, says) in [
        (
            "typo.toml",
            "[[alow]]\nmodule = \"myapp.models\"\n",
            "unknown field `alow`",
        ),
        (
            "dash.toml",
            "fail-on = \"HIGH\"\n",
            "unknown field `fail-on`",
        ),
        (
            "entry.toml",
            "[[allow]]\nmodule = \"m\"\nnews = [\"A\"]\n",
            "unknown field `news`",
        ),
        (
            "limit.toml",
            "[limits]\nmax_opz = 3\n",
            "unknown field `max_opz`",
        ),
        (
            "v9.toml",
            "version = 9\n",
            "format version 9 is not supported",
        ),
    ] {
        write(dir.path(), name, text.as_bytes());
        pg().current_dir(dir.path())
            .args(["scan", "app.pkl", "--policy", name])
            .assert()
            .code(2)
            .stderr(contains(name).and(contains(says)));
    }
    write(
        dir.path(),
        "v3/pyproject.toml",
        b"[tool.pickleguard]\nversion = 3\n",
    );
    pg().current_dir(dir.path().join("v3"))
        .args(["scan", "../app.pkl"])
        .assert()
        .code(2)
        .stderr(contains("format version 3"));
    // A policy file may set the mode; the flag wins over it.
    write(dir.path(), "strict.toml", b"mode = \"strict\"\n");
    write(dir.path(), "od.pkl", &ordered_dict());
    pg().current_dir(dir.path())
        .args(["scan", "od.pkl", "--policy", "strict.toml"])
        .assert()
        .code(1);
    pg().current_dir(dir.path())
        .args(["scan", "od.pkl", "--policy", "strict.toml", "--mode", "ml"])
        .assert()
        .code(0);
}

#[test]
fn config_in_a_parent_directory_is_honoured() {
    let root = TempDir::new().unwrap();
    let deep = root.path().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    write(&deep, "app.pkl", &app_class());
    write(&deep, "od.pkl", &ordered_dict());
    pg().current_dir(&deep)
        .args(["scan", "app.pkl"])
        .assert()
        .code(1);

    // pickleguard.toml two levels up.
    write(
        root.path(),
        "a/pickleguard.toml",
        b"[[allow]]\nmodule = \"myapp.models\"\nnew = [\"UserModel\"]\n",
    );
    pg().current_dir(&deep)
        .args(["scan", "app.pkl"])
        .assert()
        .code(0);
    pg().current_dir(&deep)
        .args(["scan", "app.pkl", "--no-config"])
        .assert()
        .code(1);
    pg().current_dir(&deep)
        .args(["policy", "show"])
        .assert()
        .success()
        .stdout(contains("myapp.models").and(contains("pickleguard.toml")));
    std::fs::remove_file(root.path().join("a/pickleguard.toml")).unwrap();

    // [tool.pickleguard] in pyproject.toml: mode and fail_on; flags win.
    write(
        root.path(),
        "pyproject.toml",
        b"[project]\nname = \"x\"\n\n[tool.pickleguard]\nmode = \"strict\"\nfail_on = \"HIGH\"\n",
    );
    let (code, doc) = scan_json(&deep, &["od.pkl"]);
    assert_eq!(doc["mode"], "strict");
    assert_eq!(doc["fail_on"], "HIGH");
    assert_eq!(
        code,
        doc["files"][0]["is_safe"]
            .as_bool()
            .map(|s| if s { 0 } else { 1 })
            .unwrap()
    );
    let (_, doc) = scan_json(&deep, &["od.pkl", "--mode", "ml", "--fail-on", "LOW"]);
    assert_eq!(doc["mode"], "ml");
    assert_eq!(doc["fail_on"], "LOW");
    // A pyproject.toml without the section does not stop the search upward.
    write(
        root.path(),
        "a/b/pyproject.toml",
        b"[project]\nname = \"inner\"\n",
    );
    let (_, doc) = scan_json(&deep, &["od.pkl"]);
    assert_eq!(doc["mode"], "strict");
    // An invalid config is an error, not silently ignored.
    write(root.path(), "a/b/pickleguard.toml", b"mode = 3\n");
    pg().current_dir(&deep)
        .args(["scan", "od.pkl"])
        .assert()
        .code(2)
        .stderr(contains("pickleguard.toml"));
}

// ---------------------------------------------------------------- walking

#[test]
fn include_and_exclude_globs() {
    let (dir, _, _) = tree();
    let (code, doc) = scan_json(dir.path(), &[".", "--include", "*.pkl"]);
    assert_eq!(code, 1);
    assert_eq!(
        all_paths(&doc),
        vec!["./models/deep/a/b/evil.pkl", "./models/ok.pkl"]
    );
    let (_, doc) = scan_json(
        dir.path(),
        &[".", "--include", "*.pkl", "--include", "*.pt"],
    );
    assert_eq!(all_paths(&doc).len(), 3);
    // Excluding a directory by name prunes it.
    let (_, doc) = scan_json(dir.path(), &[".", "--exclude", "deep", "--exclude", "data"]);
    assert!(all_paths(&doc)
        .iter()
        .all(|p| !p.contains("deep") && !p.contains("data")));
    assert_eq!(unsafe_paths(&doc), vec!["./models/innocent.txt"]);
    // Path globs.
    let (code, doc) = scan_json(
        dir.path(),
        &[".", "--exclude", "models/**", "--exclude", "data/*"],
    );
    assert_eq!(code, 0);
    assert_eq!(all_paths(&doc), vec!["./README.md"]);
    // Without a `.` prefix.
    let (_, doc) = scan_json(dir.path(), &["models", "--include", "models/deep/**"]);
    assert_eq!(all_paths(&doc), vec!["models/deep/a/b/evil.pkl"]);
}

#[cfg(unix)]
#[test]
fn file_links_are_followed_folder_links_only_when_asked() {
    let dir = TempDir::new().unwrap();
    let outside = TempDir::new().unwrap();
    write(outside.path(), "evil.pkl", &attack_global("/nonexistent/m"));
    write(dir.path(), "tree/ok.pkl", &benign_dict());
    std::os::unix::fs::symlink(
        outside.path().join("evil.pkl"),
        dir.path().join("tree/link.pkl"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("tree/linkdir")).unwrap();
    let out = pg()
        .current_dir(dir.path())
        .args(["scan", "tree"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 symbolic link(s) not followed"), "{err}");
    assert!(err.contains("outside the scanned folder: scanned"), "{err}");
    let (code, doc) = scan_json(dir.path(), &["tree", "--follow-symlinks"]);
    assert_eq!(code, 1);
    // The file the folder link leads to was scanned through the file link already.
    assert_eq!(unsafe_paths(&doc), vec!["tree/link.pkl"]);
    assert_eq!(doc["links"][0]["why"], "outside_tree");
    // A link named on the command line is followed.
    pg().current_dir(dir.path())
        .args(["scan", "tree/link.pkl"])
        .assert()
        .code(1);
}

#[test]
fn jobs_do_not_change_the_output() {
    let (dir, _, _) = tree();
    for i in 0..40 {
        write(dir.path(), &format!("many/f{i:03}.pkl"), &benign_list());
    }
    let one = pg()
        .current_dir(dir.path())
        .args(["scan", ".", "--jobs", "1", "-f", "json"])
        .output()
        .unwrap();
    let four = pg()
        .current_dir(dir.path())
        .args(["scan", ".", "-j", "4", "-f", "json"])
        .output()
        .unwrap();
    let all = pg()
        .current_dir(dir.path())
        .args(["scan", ".", "-f", "json"])
        .output()
        .unwrap();
    assert_eq!(one.stdout, four.stdout);
    assert_eq!(one.stdout, all.stdout);
    assert_eq!(one.status.code(), Some(1));
}

#[test]
fn duplicate_paths_are_reported_once() {
    let (dir, _, _) = tree();
    let (_, doc) = scan_json(dir.path(), &["models", "models/ok.pkl", "models/ok.pkl"]);
    let paths = all_paths(&doc);
    assert_eq!(paths.iter().filter(|p| *p == "models/ok.pkl").count(), 1);
}

#[test]
fn large_files_are_scanned_through_a_map() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "big.bin", &big_benign(3 << 20));
    let mut evil = attack_global("/nonexistent/m");
    // The payload, then megabytes of bytes no loader reads.
    evil.resize(3 << 20, 0);
    write(dir.path(), "big-evil.bin", &evil);
    let (code, doc) = scan_json(dir.path(), &["."]);
    assert_eq!(code, 1);
    assert_eq!(unsafe_paths(&doc), vec!["./big-evil.bin"]);
}

// ---------------------------------------------------------------- output

#[test]
fn output_file() {
    let (dir, _, _) = tree();
    pg().current_dir(dir.path())
        .args(["scan", ".", "--format", "json", "--output", "report.json"])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty());
    let doc = json(&std::fs::read(dir.path().join("report.json")).unwrap());
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["summary"]["unsafe"], 3);
    pg().current_dir(dir.path())
        .args(["scan", "models", "-o", "/nonexistent-dir/x.json"])
        .assert()
        .code(2);
}

#[test]
fn quiet_text_lists_only_problems() {
    let (dir, _, _) = tree();
    let out = pg()
        .current_dir(dir.path())
        .args(["scan", ".", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("evil.pkl: UNSAFE"));
    assert!(!text.lines().any(|l| l.contains(": SAFE")), "{text}");
    assert!(!text.contains("files scanned"));
    assert!(out.stderr.is_empty());
}

#[test]
fn colours() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "evil.pkl", &attack_global("/nonexistent/m"));
    let run = |args: &[&str], no_color: bool| {
        let mut c = pg();
        c.current_dir(dir.path())
            .arg("scan")
            .arg("evil.pkl")
            .args(args);
        if no_color {
            c.env("NO_COLOR", "1");
        }
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    // Not a terminal: no colour by default.
    assert!(!run(&[], false).contains('\x1b'));
    assert!(!run(&["--color", "auto"], false).contains('\x1b'));
    assert!(run(&["--color", "always"], false).contains("\x1b[1;31m"));
    assert!(!run(&["--color", "never"], false).contains('\x1b'));
    assert!(!run(&[], true).contains('\x1b'));
    // JSON never has colours.
    assert!(!run(&["--color", "always", "-f", "json"], false).contains('\x1b'));
}

#[test]
fn json_matches_the_documented_schema() {
    let (dir, _, _) = tree();
    let (_, doc) = scan_json(dir.path(), &["."]);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["tool"]["name"], "pickleguard");
    assert_eq!(doc["mode"], "ml");
    assert_eq!(doc["fail_on"], "MEDIUM");
    for f in doc["files"].as_array().unwrap() {
        for key in [
            "path",
            "format",
            "is_safe",
            "risk_level",
            "complete",
            "stopped_by",
            "findings",
            "globals",
            "error",
        ] {
            assert!(f.get(key).is_some(), "file entry lacks {key}: {f}");
        }
        for finding in f["findings"].as_array().unwrap() {
            for key in [
                "type",
                "severity",
                "description",
                "position",
                "module",
                "name",
                "callable",
                "args",
                "member",
            ] {
                assert!(finding.get(key).is_some(), "finding lacks {key}");
            }
        }
    }
    let evil = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "./models/deep/a/b/evil.pkl")
        .unwrap();
    assert_eq!(evil["risk_level"], "CRITICAL");
    assert_eq!(evil["globals"][0]["module"], "posix");
    assert_eq!(evil["globals"][0]["uses"][0], "call");
}

// ---------------------------------------------------------------- SARIF

fn sarif_of(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = pg()
        .current_dir(dir)
        .args(["scan", "--format", "sarif"])
        .args(args)
        .output()
        .unwrap();
    json(&out.stdout)
}

fn validate_sarif(doc: &serde_json::Value) {
    let mut schema: serde_json::Value =
        serde_json::from_str(include_str!("sarif-schema-2.1.0.json")).unwrap();
    // The official schema's `language` patterns have a stray `]`
    // ("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$") that ECMAScript regexes accept and Rust's
    // reject. pickleguard never writes `language`; drop the stray bracket in memory so the
    // schema compiles with format checking on (uri, uri-reference, ... of the instance).
    fn fix(v: &mut serde_json::Value) -> usize {
        match v {
            serde_json::Value::Object(m) => {
                let mut n = 0;
                for (k, x) in m.iter_mut() {
                    if k == "pattern" && x == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" {
                        *x = serde_json::json!("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}?$");
                        n += 1;
                    } else {
                        n += fix(x);
                    }
                }
                n
            }
            serde_json::Value::Array(a) => a.iter_mut().map(fix).sum(),
            _ => 0,
        }
    }
    assert!(fix(&mut schema) >= 1);
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF does not match the 2.1.0 schema:\n{}",
        errors.join("\n")
    );
}

#[test]
fn sarif_is_valid_2_1_0() {
    let (dir, attacks, _) = tree();
    let doc = sarif_of(dir.path(), &["."]);
    validate_sarif(&doc);
    // With an I/O error (tool execution notification) too.
    let doc_err = sarif_of(dir.path(), &[".", "missing.pkl"]);
    validate_sarif(&doc_err);
    assert_eq!(
        doc_err["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );

    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "pickleguard");
    assert!(driver["informationUri"].is_string());
    let rules = driver["rules"].as_array().unwrap();
    assert!(rules.len() >= 15);
    for r in rules {
        for key in [
            "id",
            "name",
            "shortDescription",
            "fullDescription",
            "help",
            "defaultConfiguration",
        ] {
            assert!(r.get(key).is_some(), "rule lacks {key}: {r}");
        }
        assert!(["error", "warning", "note"]
            .contains(&r["defaultConfiguration"]["level"].as_str().unwrap()));
    }
    let results = run["results"].as_array().unwrap();
    let mut uris: Vec<String> = results
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    uris.sort();
    uris.dedup();
    let expected: Vec<String> = attacks
        .iter()
        .map(|a| a.trim_start_matches("./").to_string())
        .collect();
    assert_eq!(uris, expected);
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        let sev = r["properties"]["severity"].as_str().unwrap();
        let want = match sev {
            "CRITICAL" | "HIGH" => "error",
            "MEDIUM" => "warning",
            _ => "note",
        };
        assert_eq!(r["level"], want);
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert!(loc["region"]["byteOffset"].is_u64());
        assert_eq!(loc["region"]["byteLength"], 1);
        assert!(r["message"]["text"].as_str().unwrap().len() > 10);
    }
    let call = results
        .iter()
        .find(|r| r["ruleId"] == "REDUCE_CALL")
        .unwrap();
    assert!(call["properties"]["callable"].is_string());
    assert!(call["properties"]["args"].is_array());
}

#[test]
fn sarif_uris_are_encoded_and_absolute_outside_the_working_directory() {
    let dir = TempDir::new().unwrap();
    let other = TempDir::new().unwrap();
    write(
        dir.path(),
        "with space #1.pkl",
        &attack_global("/nonexistent/m"),
    );
    write(other.path(), "evil.pkl", &attack_global("/nonexistent/m"));
    let far = other.path().join("evil.pkl").display().to_string();
    let doc = sarif_of(dir.path(), &["with space #1.pkl", &far]);
    validate_sarif(&doc);
    let uris: Vec<&str> = doc["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(uris.contains(&"with%20space%20%231.pkl"), "{uris:?}");
    assert!(
        uris.iter()
            .any(|u| u.starts_with("file:///") && u.ends_with("/evil.pkl")),
        "{uris:?}"
    );
}

// ---------------------------------------------------------------- broken pipe

#[test]
fn broken_pipe_is_not_a_crash() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new().unwrap();
    for i in 0..400 {
        write(
            dir.path(),
            &format!("f{i:04}.pkl"),
            &attack_global("/nonexistent/m"),
        );
    }
    for format in ["text", "json", "sarif"] {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("pickleguard"))
            .current_dir(dir.path())
            .args(["scan", ".", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(1)),
            "{format}: {:?} {stderr}",
            out.status
        );
    }
}

// ---------------------------------------------------------------- explain

#[test]
fn explain_renders_what_loading_would_do() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "evil.pkl",
        &attack_stack_global("/tmp/pg-never"),
    );
    write(dir.path(), "app.pkl", &app_class());
    write(dir.path(), "ok.pkl", &benign_dict());
    write(dir.path(), "od.pkl", &ordered_dict());
    let out = pg()
        .current_dir(dir.path())
        .args(["explain", "evil.pkl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "STACK_GLOBAL",
        "[str, str] -> [any]",
        "REDUCE",
        "[any, any] -> [any]",
        "from os import system",
        "_v0 = system('touch /tmp/pg-never')",
        "return _v0",
        "<- CRITICAL DANGEROUS_IMPORT",
        "<- CRITICAL REDUCE_CALL",
        "Findings:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The finding is marked on the very line of its opcode.
    let reduce_line = text
        .lines()
        .find(|l| l.contains(" REDUCE ") && l.contains("->"))
        .unwrap();
    assert!(
        reduce_line.contains("<- CRITICAL REDUCE_CALL"),
        "{reduce_line}"
    );

    let text = String::from_utf8(
        pg().current_dir(dir.path())
            .args(["explain", "app.pkl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        text.contains("from myapp.models import UserModel"),
        "{text}"
    );
    assert!(
        text.contains("_v0 = UserModel.__new__(UserModel)"),
        "{text}"
    );
    assert!(text.contains("_v0.__setstate__({'name': 'bob'})"), "{text}");

    let text = String::from_utf8(
        pg().current_dir(dir.path())
            .args(["explain", "od.pkl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(text.contains("_v0 = OrderedDict()"), "{text}");

    pg().current_dir(dir.path())
        .args(["explain", "ok.pkl"])
        .assert()
        .code(0)
        .stdout(contains("return {'a': 1}").and(contains("none")));
    pg().current_dir(dir.path())
        .args(["explain", "--no-disassembly", "evil.pkl"])
        .assert()
        .code(1)
        .stdout(contains("from os import system").and(contains("stack effect").not()));
    pg().current_dir(dir.path())
        .args(["explain", "."])
        .assert()
        .code(2);
    pg().current_dir(dir.path())
        .args(["explain", "missing"])
        .assert()
        .code(2);
    pg().args(["explain", "-"])
        .write_stdin(attack_global("/tmp/pg-never"))
        .assert()
        .code(1)
        .stdout(contains("from posix import system"));
    pg().current_dir(dir.path())
        .args(["explain", "evil.pkl", "--mode", "audit"])
        .assert()
        .code(0);
}

#[test]
fn explain_shows_every_pickle_and_breaks() {
    let dir = TempDir::new().unwrap();
    let mut two = benign_dict();
    two.extend(attack_global("/tmp/pg-never"));
    write(dir.path(), "two.pkl", &two);
    let mut broken = attack_global("/tmp/pg-never");
    broken.pop(); // no STOP: the call still runs
    broken.push(0xff);
    write(dir.path(), "broken.pkl", &broken);
    write(dir.path(), "cfg.json", &config_json());
    let text = String::from_utf8(
        pg().current_dir(dir.path())
            .args(["explain", "two.pkl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        text.contains("pickle 1 at byte 0") && text.contains("pickle 2 at byte"),
        "{text}"
    );
    assert!(text.contains("pickle #2 at byte"), "{text}");
    let out = pg()
        .current_dir(dir.path())
        .args(["explain", "broken.pkl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("_v0 = system(") && text.contains("MALFORMED"),
        "{text}"
    );
    pg().current_dir(dir.path())
        .args(["explain", "cfg.json"])
        .assert()
        .code(0)
        .stdout(contains("Not a pickle"));
}

// ---------------------------------------------------------------- policy show / learn

#[test]
fn policy_show() {
    let dir = TempDir::new().unwrap();
    pg().current_dir(dir.path())
        .args(["policy", "show"])
        .assert()
        .success()
        .stdout(contains("mode = \"ml\"").and(contains("[[allow]]")));
    pg().current_dir(dir.path())
        .args(["policy", "show", "strict"])
        .assert()
        .success()
        .stdout(contains("mode = \"strict\""));
    pg().current_dir(dir.path())
        .args([
            "policy",
            "show",
            "allowlist",
            "--allow",
            "myapp:Thing",
            "--fail-on",
            "HIGH",
        ])
        .assert()
        .success()
        .stdout(contains("module = \"myapp\"").and(contains("fail_on = \"HIGH\"")));
    // The output is a policy file the other commands accept.
    let out = pg()
        .current_dir(dir.path())
        .args(["policy", "show", "ml"])
        .output()
        .unwrap();
    std::fs::write(dir.path().join("shown.toml"), &out.stdout).unwrap();
    write(dir.path(), "od.pkl", &ordered_dict());
    pg().current_dir(dir.path())
        .args([
            "scan",
            "od.pkl",
            "--mode",
            "allowlist",
            "--policy",
            "shown.toml",
        ])
        .assert()
        .code(0);
}

#[test]
fn policy_learn_round_trip() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "trusted/app.pkl", &app_class());
    write(dir.path(), "trusted/od.pkl", &ordered_dict());
    write(dir.path(), "trusted/sub/ok.pkl", &benign_dict());
    write(dir.path(), "trusted/config.json", &config_json());
    // Before: allowlist mode rejects the application's classes.
    pg().current_dir(dir.path())
        .args(["scan", "trusted", "--mode", "allowlist"])
        .assert()
        .code(1);
    pg().current_dir(dir.path())
        .args(["policy", "learn", "trusted", "-o", "learned.toml"])
        .assert()
        .success();
    let learned = std::fs::read_to_string(dir.path().join("learned.toml")).unwrap();
    assert!(
        learned.contains("module = \"myapp.models\"\nnew = [\"UserModel\"]"),
        "{learned}"
    );
    assert!(
        learned.contains("module = \"collections\"\ncall = [\"OrderedDict\"]"),
        "{learned}"
    );
    // After: the learned file is accepted and the same files pass.
    pg().current_dir(dir.path())
        .args([
            "scan",
            "trusted",
            "--mode",
            "allowlist",
            "--policy",
            "learned.toml",
        ])
        .assert()
        .code(0);
    // To stdout without -o.
    pg().current_dir(dir.path())
        .args(["policy", "learn", "trusted"])
        .assert()
        .success()
        .stdout(contains("[[allow]]"));
}

#[test]
fn policy_learn_refuses_critical_files() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "trusted/app.pkl", &app_class());
    write(
        dir.path(),
        "trusted/evil.pkl",
        &attack_global("/nonexistent/m"),
    );
    pg().current_dir(dir.path())
        .args(["policy", "learn", "trusted", "-o", "learned.toml"])
        .assert()
        .code(1)
        .stderr(
            contains("evil.pkl")
                .and(contains("CRITICAL"))
                .and(contains("refusing")),
        );
    assert!(!dir.path().join("learned.toml").exists());
    pg().current_dir(dir.path())
        .args(["policy", "learn", "missing-dir"])
        .assert()
        .code(2);
}

#[test]
fn disasm_is_kept_for_tests() {
    pg().args(["disasm", "/dev/stdin"])
        .write_stdin(benign_dict())
        .assert()
        .code(0)
        .stdout(contains("\"op\":\"PROTO\""));
}

#[test]
fn run_is_callable_in_process() {
    // The Python console script calls `run` inside its own process, possibly more than once.
    let dir = TempDir::new().unwrap();
    write(dir.path(), "ok.pkl", &benign_dict());
    let p = dir.path().join("ok.pkl");
    for _ in 0..2 {
        let code = pickleguard_cli::run_code([
            "pickleguard",
            "scan",
            "-q",
            "--no-config",
            p.to_str().unwrap(),
        ]);
        assert_eq!(code, 0);
    }
    assert_eq!(pickleguard_cli::run_code(["pickleguard", "scan"]), 2);
}

#[test]
fn explain_writes_literals_as_findings_do() {
    // posix.system(b'a\tb\rc\x7f') and a str with a tab and a DEL, protocol 3: both are
    // written as Python's repr writes them (`\t`, `\r`, `\x7f`), in findings and in explain.
    let mut p = b"\x80\x03cposix\nsystem\nC\x07a\tb\rc\x7f!".to_vec();
    p.extend_from_slice(b"\x8c\x04x\ty\x7f\x86R.");
    let dir = TempDir::new().unwrap();
    write(dir.path(), "lit.pkl", &p);
    let scan = pg()
        .current_dir(dir.path())
        .args(["scan", "lit.pkl", "--format", "json", "--no-config"])
        .output()
        .unwrap();
    let doc = json(&scan.stdout);
    let args: Vec<String> = doc["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "REDUCE_CALL")
        .map(|f| serde_json::from_value(f["args"].clone()).unwrap())
        .unwrap();
    assert_eq!(args, ["b'a\\tb\\rc\\x7f!'", "'x\\ty\\x7f'"]);
    let out = pg()
        .current_dir(dir.path())
        .args(["explain", "lit.pkl", "--no-config", "--color", "never"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // The listing's argument column, the rendered call and the finding: one way each.
    for a in &args {
        assert!(text.matches(a.as_str()).count() >= 2, "{a} in:\n{text}");
    }
    assert!(!text.contains("b'a\\x09b"), "{text}");
}
