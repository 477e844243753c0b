"""Messages a new user reads (issue 17): each names what happened and what to do about it.

Attack files are hand-written bytes whose payload would only create a marker file; nothing
here loads one outside the guard under test.
"""
from __future__ import annotations

import io
import logging
import pickle
import re
import subprocess

import pytest

import pickleguard
from pickleguard import NotAPickleError, PickleGuard, PickleSecurityError
from test_python_support import assert_no_marker, in_tmp, system_payload  # noqa: F401


def scan_text(pg_bin, *args):
    proc = subprocess.run([str(pg_bin), "scan", "--color", "never", "--no-config", *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc


def newobj(module: str, name: str) -> bytes:
    """Protocol 2: module.name rebuilt by NEWOBJ with no arguments."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")\x81."


def binunicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def call3(module: str, name: str, *args: str) -> bytes:
    """Protocol 2: module.name(*args) with string arguments (TUPLE of up to 3)."""
    tup = {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(args)]
    return (b"\x80\x02c" + f"{module}\n{name}\n".encode()
            + b"".join(binunicode(a) for a in args) + tup + b"R.")


def test_newobj_under_a_call_only_entry_names_the_operation_to_add(tmp_path, scan):
    (tmp_path / "pol.toml").write_text('[[allow]]\nmodule = "myapp.models"\ncall = ["User"]\n')
    f = tmp_path / "user.pkl"
    f.write_bytes(newobj("myapp.models", "User"))
    r = scan(f, "allowlist", ["--no-config", "--policy", tmp_path / "pol.toml"])
    [d] = [x["description"] for x in r["findings"] if x["name"] == "User"]
    assert "only as a function to call" in d
    assert "`new` operation" in d and 'new = ["User"]' in d and 'module = "myapp.models"' in d
    # The other way round: a type entry, used as a function.
    (tmp_path / "pol2.toml").write_text('[[allow]]\nmodule = "myapp.models"\nnew = ["make"]\n')
    g = tmp_path / "make.pkl"
    g.write_bytes(call3("myapp.models", "make", "x"))
    r = scan(g, "allowlist", ["--no-config", "--policy", tmp_path / "pol2.toml"])
    [d] = [x["description"] for x in r["findings"] if x["type"] == "REDUCE_CALL"]
    assert "only as a type to rebuild" in d and "`call` operation" in d and 'call = ["make"]' in d


def test_every_finding_in_text_output_ends_with_a_fix(tmp_path, pg_bin):
    files = {
        "unknown.pkl": newobj("myapp.models", "User"),
        "system.pkl": system_payload("msg"),
        "exec.pkl": call3("builtins", "exec", "open('x', 'w').close()"),
        "trailing.pkl": pickle.dumps([1, 2]) + b"\xff\xfe junk",
        "cut.pkl": b"\x80\x02cposix\nsystem\n(X\xff\x00\x00\x00abc",
        "sevenzip.bin": b"7z\xbc\xaf\x27\x1c" + bytes(64),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    proc = scan_text(pg_bin, tmp_path, "--fail-on", "LOW")
    lines = proc.stdout.splitlines()
    finding = re.compile(r"^  (LOW|MEDIUM|HIGH|CRITICAL) [A-Z_]+ at byte \d+")
    found = [i for i, line in enumerate(lines) if finding.match(line)]
    assert len(found) >= len(files), proc.stdout
    for i in found:
        assert lines[i + 1].startswith("    fix: "), (lines[i], lines[i + 1:i + 2])
    text = proc.stdout
    # What the user can apply: allow a global they trust, never for a dangerous one.
    assert "--allow myapp.models:User" in text and "pickleguard policy learn" in text
    assert 'register_safe_class("myapp.models:User")' in text
    for line in lines:
        if "fix:" in line and "--allow" in line:
            assert "posix" not in line and "builtins" not in line, line
    system_fix = lines[lines.index(next(l for l in lines if "DANGEROUS_IMPORT" in l and "posix" in l)) + 1]
    assert "do not load this file" in system_fix and "pickleguard explain" in system_fix


def test_a_cut_pickle_is_reported_one_way_at_every_length(tmp_path, scan):
    """Protocol 4 (PROTO + FRAME): cut anywhere before an import it cannot run anything
    (not_pickle, safe, complete, nothing stopped it); cut after one it is a payload with a
    break (MALFORMED, not safe, incomplete). Never complete with a stop reason."""
    benign = pickle.dumps({"weights": list(range(40)), "name": "m"}, protocol=4)
    evil = system_payload("cut", protocol=4)
    import_end = evil.index(b"\x93") + 1  # STACK_GLOBAL
    for label, data in (("benign", benign), ("evil", evil)):
        for n in range(1, len(data)):
            f = tmp_path / f"{label}{n}.pkl"
            f.write_bytes(data[:n])
            r = scan(f)
            assert r["complete"] == (r["stopped_by"] is None), (label, n, r)
            if r["format"] == "not_pickle":
                assert r["is_safe"] and r["complete"] and not r["findings"], (label, n, r)
            if label == "evil" and n >= import_end:
                assert not r["is_safe"] and not r["complete"], (label, n, r)
                assert any(x["type"] == "MALFORMED" for x in r["findings"]), (label, n, r)
            if label == "benign":
                assert r["is_safe"], (label, n, r)


def test_audit_mode_logs_what_it_let_through_as_let_through(in_tmp, caplog):  # noqa: F811
    data = newobj("email.message", "Message")
    caplog.set_level(logging.INFO, logger="pickleguard")
    g = PickleGuard("audit", log_file=in_tmp / "audit.log")
    g.Unpickler(io.BytesIO(data), _pg_prescanned=True).load()
    text = (in_tmp / "audit.log").read_text()
    assert "email.message" in text and "let through by audit mode" in text, text
    assert "refused" not in text, text
    # Other modes still refuse, and say so.
    with pytest.raises(PickleSecurityError, match="refused"):
        PickleGuard("ml").Unpickler(io.BytesIO(data), _pg_prescanned=True).load()


@pytest.mark.parametrize("content", [b"hello, this is a README\n", b'{"model_type": "bert"}',
                                     b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}"])
def test_safe_load_of_something_that_is_no_pickle_says_so(in_tmp, content):  # noqa: F811
    f = in_tmp / "notes.txt"
    f.write_bytes(content)
    for load in (lambda: pickleguard.safe_load(f), lambda: pickleguard.safe_load(str(f)),
                 lambda: pickleguard.safe_loads(content)):
        with pytest.raises(NotAPickleError) as e:
            load()
        msg = str(e.value)
        assert "is not a pickle" in msg and "nothing was loaded" in msg, msg
        assert "invalid load key" not in msg and "truncated" not in msg, msg
        assert isinstance(e.value, pickle.UnpicklingError)
        assert e.value.analysis.format == "not_pickle" and e.value.analysis.is_safe


def test_sources_are_named_in_plain_words(in_tmp):  # noqa: F811
    data = system_payload("named")
    with pytest.raises(PickleSecurityError) as e:
        pickleguard.safe_loads(data)
    assert f"<{len(data)} bytes>" in str(e.value) and "<bytes of" not in str(e.value)
    with pytest.raises(PickleSecurityError) as e:
        pickleguard.safe_loads(bytearray(data))
    assert f"<bytearray of {len(data)} bytes>" in str(e.value)
    assert_no_marker("named")


def test_explain_uses_the_right_article(tmp_path, pg_bin):
    f = tmp_path / "archive.7z"
    f.write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(64))
    proc = subprocess.run([str(pg_bin), "explain", "--color", "never", str(f)],
                          capture_output=True, text=True, timeout=60)
    assert "a unscannable" not in proc.stdout
    for fmt in ("unscannable", "encrypted"):
        assert f"a {fmt} " not in proc.stdout


def test_harmless_literals_of_code_runners_are_no_code_strings(tmp_path, scan):
    code = "open('pickleguard-marker-cs', 'w').close()"
    cases = {
        "compile.pkl": (call3("builtins", "compile", code, "<string>", "exec"), [code]),
        "exec_empty.pkl": (call3("builtins", "exec", ""), []),
        "eval_name.pkl": (call3("builtins", "eval", "exec"), []),
        "exec_code.pkl": (call3("builtins", "exec", code), [code]),
    }
    for name, (data, want) in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        r = scan(f)
        got = [x["description"] for x in r["findings"] if x["type"] == "CODE_STRING"]
        assert len(got) == len(want), (name, got)
        for d, w in zip(got, want):
            assert repr(w).strip("'") in d or w in d, (name, d)
        # The call itself is judged on its own: still critical.
        assert r["risk_level"] == "CRITICAL" and not r["is_safe"], (name, r)


#: A global name that would clear the screen, colour the terminal, reorder the text and start
#: a line of its own if it were printed raw.
HOSTILE_NAME = "sys\ntem\x1b[31m\x9b\u2066FORGED"


def stack_global_call(module: str, name: str) -> bytes:
    """Protocol 4: module.name() through STACK_GLOBAL + REDUCE."""
    def short(s: str) -> bytes:
        b = s.encode()
        return b"\x8c" + bytes([len(b)]) + b
    return b"\x80\x04" + short(module) + short(name) + b"\x93)R."


def assert_terminal_safe(text: str, lines: int = 1) -> None:
    """No C0 control but the line breaks between `lines` lines, no DEL, C1 or bidi control."""
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
           or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
    assert not bad, (bad, text)
    assert len(text.rstrip("\n").split("\n")) == lines, text


def test_refusals_escape_names_from_the_file_and_keep_them_in_the_analysis(in_tmp):  # noqa: F811
    data = stack_global_call("os", HOSTILE_NAME)
    escaped = "os.sys\\ntem\\x1b[31m\\x9b\\u2066FORGED"
    # The static scan's refusal, of bytes and of a file whose name is hostile too.
    f = in_tmp / "m\x1b]0;pwn\x07.pkl"
    f.write_bytes(data)
    for load in (lambda: pickleguard.safe_loads(data), lambda: pickleguard.safe_load(f)):
        with pytest.raises(PickleSecurityError) as e:
            load()
        assert_terminal_safe(str(e.value))
        assert escaped in str(e.value), str(e.value)
        assert {x.name for x in e.value.findings if x.name} == {HOSTILE_NAME}
    assert "m\\x1b]0;pwn\\x07.pkl" in str(e.value), str(e.value)
    # The restricted unpickler's refusal.
    with pytest.raises(PickleSecurityError) as e:
        PickleGuard("ml").Unpickler(io.BytesIO(data), _pg_prescanned=True).load()
    assert_terminal_safe(str(e.value))
    assert f"refused to import {escaped} while loading" in str(e.value), str(e.value)
    assert e.value.findings[0].name == HOSTILE_NAME
    # A pickled error keeps its message as it is.
    assert str(pickle.loads(pickle.dumps(e.value))) == str(e.value)


def test_audit_log_lines_escape_names_from_the_file(in_tmp):  # noqa: F811
    g = PickleGuard("audit", log_file=in_tmp / "audit.log")
    a = g.check(g.analyze(stack_global_call("os", HOSTILE_NAME), source="a\x1b[2J\nb.pkl"))
    assert len(a.findings) == 2
    text = (in_tmp / "audit.log").read_text()
    # One line per finding and one summary line: no name started a line.
    assert_terminal_safe(text, lines=3)
    assert "a\\x1b[2J\\nb.pkl: [MEDIUM] UNKNOWN_IMPORT" in text, text
    assert_terminal_safe(a.summary())
