//! What a scanned file names (its own name found by walking a folder, an archive member's
//! name, a global's module and name) never reaches a terminal raw: no control sequence, no
//! bidi control, no line of its own. JSON keeps the names exactly.

mod common;

use common::*;
use std::path::Path;
use tempfile::TempDir;

/// A file name that sets the terminal title, rings the bell, clears the screen through a C1
/// CSI and forges a line of the report.
const HOSTILE_FILE: &str = "a\u{1b}]0;pwn\u{7}\u{9b}2J\nUNSAFE forged.pkl";
/// A zip member name with the same tricks and a bidi override.
const HOSTILE_MEMBER: &str = "arc/data\u{1b}[2J\u{7}\u{9b}\u{202e}\nFORGED member.pkl";
/// A global name (the module must be a dotted name, or the stream breaks at it).
const HOSTILE_NAME: &str = "sys\ntem\u{1b}[31m\u{9b}\u{2066}FORGED";

/// Protocol 4: `MODULE.NAME()` through STACK_GLOBAL + REDUCE.
fn call_global(module: &str, name: &str) -> Vec<u8> {
    let mut v = vec![0x80, 4];
    for s in [module, name] {
        v.push(0x8c); // SHORT_BINUNICODE
        v.push(s.len() as u8);
        v.extend_from_slice(s.as_bytes());
    }
    v.extend_from_slice(&[0x93, b')', b'R', b'.']); // STACK_GLOBAL EMPTY_TUPLE REDUCE STOP
    v
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip of one stored member.
fn stored_zip(name: &str, data: &[u8]) -> Vec<u8> {
    let (name, crc, len) = (name.as_bytes(), crc32(data), data.len() as u32);
    let mut z = Vec::new();
    z.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x08\x00\x00\x00\x00\x00\x00"); // UTF-8 names
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z.extend_from_slice(name);
    z.extend_from_slice(data);
    let cd = z.len() as u32;
    z.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x08\x00\x00\x00\x00\x00\x00");
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
    z.extend_from_slice(&0u32.to_le_bytes()); // local header at 0
    z.extend_from_slice(name);
    let cd_len = z.len() as u32 - cd;
    z.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    z.extend_from_slice(&cd_len.to_le_bytes());
    z.extend_from_slice(&cd.to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z
}

/// A folder with the hostile file name (an attack inside), a zip with the hostile member name,
/// and a pickle importing the hostile global.
fn hostile_tree() -> TempDir {
    let dir = TempDir::new().unwrap();
    let p = dir.path();
    std::fs::write(p.join(HOSTILE_FILE), attack_stack_global("MARKER")).unwrap();
    std::fs::write(
        p.join("arch.zip"),
        stored_zip(HOSTILE_MEMBER, &attack_stack_global("MARKER")),
    )
    .unwrap();
    std::fs::write(p.join("glob.pkl"), call_global("os", HOSTILE_NAME)).unwrap();
    dir
}

/// Nothing in `out` a terminal acts on: C0 controls but the line feed, DEL, C1 controls, bidi
/// embeddings, overrides and isolates; and no line that a name started.
fn assert_terminal_safe(what: &str, out: &[u8]) {
    let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    for c in text.chars() {
        let n = c as u32;
        let bad = (n < 0x20 && c != '\n')
            || (0x7f..=0x9f).contains(&n)
            || (0x202a..=0x202e).contains(&n)
            || (0x2066..=0x2069).contains(&n);
        assert!(!bad, "{what}: {c:?} reaches the terminal in:\n{text}");
    }
    for line in text.lines() {
        assert!(
            !line.trim_start().starts_with("UNSAFE forged")
                && !line.trim_start().starts_with("FORGED")
                && !line.contains(" FORGED member.pkl"),
            "{what}: a name forged the line {line:?} in:\n{text}"
        );
    }
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    pg().current_dir(dir).args(args).output().unwrap()
}

#[test]
fn scan_text_escapes_file_member_and_global_names() {
    let dir = hostile_tree();
    let out = run(
        dir.path(),
        &["scan", "--color", "never", "--list-globals", "."],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_terminal_safe("scan stdout", &out.stdout);
    assert_terminal_safe("scan stderr", &out.stderr);
    let text = String::from_utf8(out.stdout).unwrap();
    // Each name is there, escaped as Python's repr escapes it, on the line it belongs to.
    assert!(
        text.contains("./a\\x1b]0;pwn\\x07\\x9b2J\\nUNSAFE forged.pkl: UNSAFE (CRITICAL"),
        "{text}"
    );
    assert!(
        text.contains(
            "in arc/data\\x1b[2J\\x07\\x9b\\u202e\\nFORGED member.pkl: imports os.system"
        ),
        "{text}"
    );
    assert!(
        text.contains("    os.sys\\ntem\\x1b[31m\\x9b\\u2066FORGED (call; 1 use)"),
        "{text}"
    );
    // The fix line quotes the path for a shell, and still escapes it.
    assert!(
        text.contains("`pickleguard explain './a\\x1b]0;pwn\\x07\\x9b2J\\nUNSAFE forged.pkl'`"),
        "{text}"
    );
    // One header per file, two lines per finding, the summary: no line more.
    let files = 3;
    let findings = 2 + 2 + 2;
    let globals = 3 * 2;
    assert_eq!(
        text.lines().count(),
        files + 2 * findings + globals + 2,
        "{text}"
    );
}

#[test]
fn explain_escapes_member_headings_imports_and_literals() {
    let dir = hostile_tree();
    for file in ["arch.zip", "glob.pkl", HOSTILE_FILE] {
        let out = run(dir.path(), &["explain", "--color", "never", file]);
        assert_eq!(out.status.code(), Some(1), "{file:?}");
        assert_terminal_safe(&format!("explain {file:?}"), &out.stdout);
        assert_terminal_safe(&format!("explain {file:?} stderr"), &out.stderr);
    }
    let out = run(dir.path(), &["explain", "--color", "never", "arch.zip"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("== arc/data\\x1b[2J\\x07\\x9b\\u202e\\nFORGED member.pkl (raw_pickle, "),
        "{text}"
    );
    let out = run(dir.path(), &["explain", "--color", "never", "glob.pkl"]);
    let text = String::from_utf8(out.stdout).unwrap();
    // The literal in the listing and the import in the rendering, as Python's repr.
    assert!(
        text.contains("SHORT_BINUNICODE      'sys\\ntem\\x1b[31m\\x9b\\u2066FORGED'"),
        "{text}"
    );
    assert!(
        text.contains("_g0 = find_class('os', 'sys\\ntem\\x1b[31m\\x9b\\u2066FORGED')"),
        "{text}"
    );
}

#[test]
fn error_messages_on_stderr_escape_names() {
    let dir = hostile_tree();
    let missing = format!("{HOSTILE_FILE}.missing");
    let out = run(dir.path(), &["explain", &missing]);
    assert_eq!(out.status.code(), Some(2));
    assert_terminal_safe("explain error", &out.stderr);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("pickleguard: a\\x1b]0;pwn\\x07\\x9b2J\\nUNSAFE forged.pkl.missing: "),
        "{err}"
    );
}

#[test]
fn json_keeps_every_name_exactly() {
    let dir = hostile_tree();
    let out = run(dir.path(), &["scan", "--format", "json", "."]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out.stdout);
    let files = doc["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(
        paths.contains(&format!("./{HOSTILE_FILE}").as_str()),
        "{paths:?}"
    );
    let file = |p: &str| files.iter().find(|f| f["path"] == p).unwrap();
    let members: Vec<&str> = file("./arch.zip")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["member"].as_str().unwrap())
        .collect();
    assert_eq!(members, [HOSTILE_MEMBER, HOSTILE_MEMBER]);
    let glob = &file("./glob.pkl")["globals"][0];
    assert_eq!(glob["module"], "os");
    assert_eq!(glob["name"], HOSTILE_NAME);
    let finding = &file("./glob.pkl")["findings"][0];
    assert_eq!(finding["name"], HOSTILE_NAME);
    assert_eq!(
        finding["description"],
        format!("imports os.{HOSTILE_NAME}: not in the ml policy")
    );
}
