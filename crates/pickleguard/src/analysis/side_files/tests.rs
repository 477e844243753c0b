//! joblib's legacy array wrappers name side files: each is a finding that carries the name.

use super::super::testing::*;
use super::*;

/// A wrapper of `class` (joblib's module `module`) rebuilt with the state `{'filename': ...}`.
fn wrapper(module: &str, class: &str, filename: Option<&str>) -> (Vec<u8>, u64) {
    let p = P::new()
        .g(module, class)
        .op(&[EMPTY_TUPLE, NEWOBJ, EMPTY_DICT])
        .s("filename");
    let p = match filename {
        Some(name) => p.s(name),
        // A name computed at load time.
        None => p.g("builtins", "str").s("x").op(&[TUPLE1, REDUCE]),
    };
    let p = p.op(&[SETITEM]);
    let at = p.at();
    (p.op(&[BUILD]).done(), at)
}

fn side(data: &[u8]) -> Report {
    judged(data, &ml(), |m, _, _| {
        let mut out = Report::new("raw_pickle");
        side_files(m, &mut out);
        out
    })
}

#[test]
fn an_ndarray_wrapper_names_a_file_numpy_unpickles() {
    for module in ["joblib.numpy_pickle", "joblib.numpy_pickle_compat"] {
        let (data, at) = wrapper(module, "NDArrayWrapper", Some("model.pkl_01.npy"));
        let r = side(&data);
        let f = only(&r);
        assert_eq!(f.kind, FindingType::Unscannable);
        assert_eq!(f.severity, Severity::Medium);
        assert_eq!(f.position, at);
        assert!(
            f.description.contains("'model.pkl_01.npy'"),
            "{}",
            f.description
        );
        assert!(
            f.description.contains("allow_pickle=True"),
            "{}",
            f.description
        );
        assert_eq!(f.module.as_deref(), Some(module));
        assert_eq!(f.name.as_deref(), Some("NDArrayWrapper"));
        assert_eq!(f.args, Some(vec!["model.pkl_01.npy".to_string()]));
    }
}

#[test]
fn a_zndarray_wrapper_names_raw_data() {
    let (data, _) = wrapper("joblib.numpy_pickle_compat", "ZNDArrayWrapper", Some("a.z"));
    let r = side(&data);
    let f = only(&r);
    assert_eq!(
        (f.kind, f.severity),
        (FindingType::Unscannable, Severity::Low)
    );
    assert!(
        f.description.contains("zlib-compressed"),
        "{}",
        f.description
    );
    assert_eq!(f.args, Some(vec!["a.z".to_string()]));
}

#[test]
fn a_name_computed_at_load_time_cannot_be_checked() {
    let (data, _) = wrapper("joblib.numpy_pickle", "NDArrayWrapper", None);
    let r = side(&data);
    let f = only(&r);
    assert!(
        f.description.contains("computed at load time"),
        "{}",
        f.description
    );
    assert_eq!(f.args, Some(vec!["?".to_string()]));
}

#[test]
fn other_classes_and_calls_without_build_name_no_side_file() {
    let (data, _) = wrapper("joblib.numpy_pickle", "ArrayWrapper", Some("a.npy"));
    assert!(side(&data).findings.is_empty());
    let (data, _) = wrapper("mylib", "NDArrayWrapper", Some("a.npy"));
    assert!(side(&data).findings.is_empty());
    let unbuilt = P::new()
        .g("joblib.numpy_pickle", "NDArrayWrapper")
        .op(&[EMPTY_TUPLE, NEWOBJ])
        .done();
    assert!(side(&unbuilt).findings.is_empty());
}

#[test]
fn the_whole_scan_reports_the_side_file() {
    let (data, _) = wrapper("joblib.numpy_pickle", "NDArrayWrapper", Some("w.npy"));
    let r = scan(&data);
    assert_eq!(
        finding(&r, FindingType::Unscannable, "w.npy").severity,
        Severity::Medium
    );
}
