//! Fixtures for the CLI tests: hand-written pickles. None of them is ever loaded; the attack
//! payloads would only create a marker file if they were.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::Path;

/// The pickleguard binary, with no user config influencing it unless a test writes one into
/// its own temporary working directory.
pub fn pg() -> Command {
    let mut c = Command::cargo_bin("pickleguard").expect("binary built");
    c.env_remove("NO_COLOR");
    c
}

fn unicode_line(s: &str) -> Vec<u8> {
    let mut v = b"V".to_vec();
    v.extend_from_slice(s.as_bytes());
    v.push(b'\n');
    v
}

/// Protocol 0: `posix.system('touch MARKER')` through GLOBAL + REDUCE.
pub fn attack_global(marker: &str) -> Vec<u8> {
    let mut v = b"cposix\nsystem\n(".to_vec();
    v.extend(unicode_line(&format!("touch {marker}")));
    v.extend_from_slice(b"tR.");
    v
}

fn short_unicode(s: &str) -> Vec<u8> {
    let mut v = vec![0x8c, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// Protocol 4: `os.system('touch MARKER')` through STACK_GLOBAL + REDUCE.
pub fn attack_stack_global(marker: &str) -> Vec<u8> {
    let mut v = vec![0x80, 4];
    v.extend(short_unicode("os"));
    v.extend(short_unicode("system"));
    v.push(0x93); // STACK_GLOBAL
    v.extend(short_unicode(&format!("touch {marker}")));
    v.extend_from_slice(&[0x85, b'R', b'.']); // TUPLE1 REDUCE STOP
    v
}

/// Protocol 2: `builtins.exec("open('MARKER','w')")`.
pub fn attack_exec(marker: &str) -> Vec<u8> {
    let mut v = b"\x80\x02cbuiltins\nexec\n".to_vec();
    let code = format!("open('{marker}', 'w').close()");
    v.push(b'X');
    v.extend_from_slice(&(code.len() as u32).to_le_bytes());
    v.extend_from_slice(code.as_bytes());
    v.extend_from_slice(b"\x85R.");
    v
}

/// Protocol 2: `{'a': 1}`.
pub fn benign_dict() -> Vec<u8> {
    b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.".to_vec()
}

/// Protocol 2: `[1, 2.5, 'x', None, True]`.
pub fn benign_list() -> Vec<u8> {
    b"\x80\x02]q\x00(K\x01G@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xNI01\ne.".to_vec()
}

/// Protocol 2: `collections.OrderedDict()`, allowed by the ml profile, not by strict or an
/// empty allowlist.
pub fn ordered_dict() -> Vec<u8> {
    b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.".to_vec()
}

/// A class of the user's application: unknown to the ml profile (MEDIUM, not CRITICAL).
pub fn app_class() -> Vec<u8> {
    b"\x80\x02cmyapp.models\nUserModel\nq\x00)\x81q\x01}q\x02X\x04\x00\x00\x00nameq\x03X\x03\x00\x00\x00bobq\x04sb.".to_vec()
}

/// A benign pickle followed by bytes that are not a pickle: TRAILING_DATA, LOW.
pub fn trailing() -> Vec<u8> {
    let mut v = benign_dict();
    v.extend_from_slice(b"\xff\xfe not a pickle");
    v
}

/// Not a pickle at all.
pub fn config_json() -> Vec<u8> {
    b"{\"hidden_size\": 768}\n".to_vec()
}

/// A benign pickle of `size` bytes: one BINBYTES8 payload (to exercise memory mapping).
pub fn big_benign(size: usize) -> Vec<u8> {
    let payload = size.saturating_sub(14);
    let mut v = vec![0x80, 4, 0x8e];
    v.extend_from_slice(&(payload as u64).to_le_bytes());
    v.resize(v.len() + payload, b'x');
    v.push(b'.');
    v
}

pub fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, bytes).unwrap();
}

pub fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// Paths of the files a JSON report calls unsafe.
pub fn unsafe_paths(doc: &serde_json::Value) -> Vec<String> {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["is_safe"] == false)
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

pub fn all_paths(doc: &serde_json::Value) -> Vec<String> {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// A tree of benign files and harmless attack files; returns the attack files' paths
/// (relative, as a scan of `.` run inside `dir` reports them).
pub fn mixed_tree(dir: &Path, marker: &str) -> Vec<String> {
    write(dir, "models/ok.pkl", &benign_dict());
    write(dir, "models/list.bin", &benign_list());
    write(dir, "models/od.pt", &ordered_dict());
    write(dir, "models/config.json", &config_json());
    write(dir, "README.md", b"# models\n");
    write(dir, "models/deep/a/b/evil.pkl", &attack_global(marker));
    write(dir, "models/innocent.txt", &attack_stack_global(marker));
    write(dir, "data/weights.npy", &attack_exec(marker));
    let mut v = vec![
        "./models/deep/a/b/evil.pkl".to_string(),
        "./models/innocent.txt".to_string(),
        "./data/weights.npy".to_string(),
    ];
    v.sort();
    v
}
