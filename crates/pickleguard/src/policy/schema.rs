//! What may flow into an operation: argument patterns of `[[rule]]` tables, the per-key
//! patterns of a BUILD state, and the string grammars for strings that reach an evaluating
//! sink. There is no "anything" pattern: the widest is `data` (plain data, containers of it,
//! objects the policy made, and globals the policy allows to be stored).

/// A named grammar for strings that reach code which parses or evaluates them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Grammar {
    /// A Python identifier that is not a dunder and not a keyword.
    Ident,
    /// Identifiers separated by commas (scipy's `shapes`).
    Names,
    /// An arithmetic expression for sympify: numbers, names, operators, parentheses and calls
    /// of a short named list of functions; no attribute access, quotes, brackets, dunders.
    Expr,
    /// A patsy/formulaic formula: like `Expr` plus `~ : |`, calls only of `C`, `I`.
    Formula,
    /// The argument-parser source scipy.stats builds from a distribution's shape names and
    /// `exec`s in `__setstate__`: exactly scipy's template with identifiers filled in.
    ScipyArgParser,
}

/// Longest string a grammar accepts (real expressions and names are short).
pub const MAX_GRAMMAR_LEN: usize = 512;

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Functions an `Expr` string may call (sympy's own names for them).
const EXPR_CALLS: &[&str] = &[
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "log", "sqrt",
    "Abs", "sign", "floor", "ceiling", "Min", "Max", "Integer", "Rational", "Float", "Symbol",
];
const FORMULA_CALLS: &[&str] = &["C", "I", "np_log", "log", "exp", "center", "standardize"];

impl Grammar {
    pub fn parse(s: &str) -> Option<Grammar> {
        Some(match s {
            "ident" => Grammar::Ident,
            "names" => Grammar::Names,
            "expr" => Grammar::Expr,
            "formula" => Grammar::Formula,
            "scipy_argparser" => Grammar::ScipyArgParser,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grammar::Ident => "ident",
            Grammar::Names => "names",
            Grammar::Expr => "expr",
            Grammar::Formula => "formula",
            Grammar::ScipyArgParser => "scipy_argparser",
        }
    }

    /// Whether `t` is a sentence of this grammar.
    pub fn accepts(self, t: &str) -> bool {
        if t.len()
            > MAX_GRAMMAR_LEN
                * if self == Grammar::ScipyArgParser {
                    4
                } else {
                    1
                }
        {
            return false;
        }
        match self {
            Grammar::Ident => is_ident(t),
            Grammar::Names => t.trim().is_empty() || t.split(',').all(|n| is_ident(n.trim())),
            Grammar::Expr => expression(t, "+-*/^%().,<>=! ", EXPR_CALLS),
            Grammar::Formula => expression(t, "+-*/^%().,~:| ", FORMULA_CALLS),
            Grammar::ScipyArgParser => scipy_argparser(t),
        }
    }
}

fn is_ident(t: &str) -> bool {
    let mut cs = t.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !t.contains("__")
        && !KEYWORDS.contains(&t)
}

/// Tokenise an expression: numbers, identifiers and the operator characters `ops`. An
/// identifier directly followed by `(` must be in `calls`; a `.` is only a decimal point.
fn expression(t: &str, ops: &str, calls: &[&str]) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    let mut depth = 0i32;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            // A number: digits, one decimal point, an exponent.
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // `1.real`: attribute access on a number.
            if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
                return false;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let name = &t[s..i];
            if !is_ident(name) {
                return false;
            }
            let mut k = i;
            while k < b.len() && b[k] == b' ' {
                k += 1;
            }
            match b.get(k) {
                Some(b'(') if !calls.contains(&name) => return false,
                Some(b'.') => return false,
                _ => {}
            }
            continue;
        }
        if c == '.' {
            return false;
        }
        if !ops.contains(c) {
            return false;
        }
        if c == '(' {
            depth += 1;
        } else if c == ')' {
            depth -= 1;
            if depth < 0 {
                return false;
            }
        }
        i += 1;
    }
    depth == 0
}

/// scipy's `parse_arg_template` (scipy/stats/_distn_infrastructure.py) filled with shape
/// names and one of the two location/scale signatures it uses.
fn scipy_argparser(t: &str) -> bool {
    const HEAD: &str = "\ndef _parse_args(self, ";
    let Some(rest) = t.strip_prefix(HEAD) else {
        return false;
    };
    for (lin, lout) in [("loc=0, scale=1", "loc, scale"), ("loc=0", "loc, 1")] {
        let Some(at) = rest.find(&format!(" {lin}):")) else {
            continue;
        };
        let shapes = &rest[..at];
        let ok = shapes.is_empty()
            || shapes
                .strip_suffix(", ")
                .is_some_and(|s| s.split(", ").all(is_ident));
        if !ok {
            continue;
        }
        let want = format!(
            "\ndef _parse_args(self, {s} {lin}):\n    return ({s}), {lout}\n\n\
             def _parse_args_rvs(self, {s} {lin}, size=None):\n    return self._argcheck_rvs({s} {lout}, size=size)\n\n\
             def _parse_args_stats(self, {s} {lin}, moments='mv'):\n    return ({s}), {lout}, moments\n",
            s = shapes
        );
        if t == want {
            return true;
        }
    }
    false
}

/// One positional argument pattern of a rule (or a BUILD state key's pattern).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ArgPattern {
    /// Plain data, containers of it, objects the policy made, globals it lets be stored.
    Data,
    Str,
    Bytes,
    Int,
    Float,
    Bool,
    None,
    Tuple,
    List,
    Dict,
    IntTuple,
    Ident,
    /// This exact string.
    Exact(String),
    /// A string of a grammar.
    Grammar(Grammar),
    /// Any global the policy allows (not dangerous).
    Global,
    /// A global the policy allows to be called.
    GlobalCall,
    /// A global the policy allows to be rebuilt (`new`).
    GlobalNew,
    /// Exactly one of these globals (qualified names after alias normalisation).
    GlobalIs(Vec<String>),
    /// An object made by a call of one of these globals.
    Made(Vec<String>),
    Persistent,
    /// An attribute name that is not a dunder (`_private` is fine, `__globals__` is not).
    Attr,
    /// An object a call the policy accepted has made (not a global, not plain data).
    Instance,
    /// The key must not be present (BUILD state patterns only).
    Never,
    OneOf(Vec<ArgPattern>),
    /// Any number of further arguments, each `data` (written `...`, last).
    Rest,
}

impl ArgPattern {
    /// Parse a pattern. `any` (format version 1 only) is read as `data`: there is no
    /// pattern that accepts everything.
    pub fn parse(s: &str, version: i64) -> Result<ArgPattern, String> {
        if s.contains('|') {
            return s
                .split('|')
                .map(|p| ArgPattern::parse(p, version))
                .collect::<Result<_, _>>()
                .map(ArgPattern::OneOf);
        }
        if let Some(t) = s.strip_prefix('=') {
            return Ok(ArgPattern::Exact(t.to_string()));
        }
        if let Some(g) = s.strip_prefix("grammar:") {
            return Grammar::parse(g)
                .map(ArgPattern::Grammar)
                .ok_or_else(|| format!("unknown grammar {g:?}"));
        }
        if let Some(q) = s.strip_prefix("global:") {
            return Ok(ArgPattern::GlobalIs(vec![q.to_string()]));
        }
        if let Some(q) = s.strip_prefix("made:") {
            return Ok(ArgPattern::Made(vec![q.to_string()]));
        }
        Ok(match s {
            "any" if version < 2 => ArgPattern::Data,
            "data" => ArgPattern::Data,
            "str" => ArgPattern::Str,
            "bytes" => ArgPattern::Bytes,
            "int" => ArgPattern::Int,
            "float" => ArgPattern::Float,
            "bool" => ArgPattern::Bool,
            "none" => ArgPattern::None,
            "tuple" => ArgPattern::Tuple,
            "list" => ArgPattern::List,
            "dict" => ArgPattern::Dict,
            "int_tuple" => ArgPattern::IntTuple,
            "ident" => ArgPattern::Ident,
            "global" => ArgPattern::Global,
            "global_call" => ArgPattern::GlobalCall,
            "global_new" => ArgPattern::GlobalNew,
            "persistent" => ArgPattern::Persistent,
            "attr" => ArgPattern::Attr,
            "instance" => ArgPattern::Instance,
            "never" => ArgPattern::Never,
            "..." => ArgPattern::Rest,
            other => return Err(format!("unknown argument pattern {other:?}")),
        })
    }

    /// Normalise the module part of the global names it mentions (`copy_reg` -> `copyreg`).
    pub(super) fn normalise(&mut self, norm: &dyn Fn(&str) -> String) {
        match self {
            ArgPattern::GlobalIs(v) | ArgPattern::Made(v) => {
                for q in v.iter_mut() {
                    *q = norm(q);
                }
            }
            ArgPattern::OneOf(v) => v.iter_mut().for_each(|p| p.normalise(norm)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_without_calls_attributes_or_dunders() {
        let g = Grammar::Expr;
        for ok in [
            "x",
            "x + 1",
            "2*x**2 - 3.5e-3*y",
            "sin(x)/cos(y)",
            "x_1",
            "(a+b)*(c-d)",
            "",
        ] {
            assert!(g.accepts(ok), "{ok:?}");
        }
        for bad in [
            "__import__('os').system('id')",
            "os.system",
            "x.__class__",
            "exec(x)",
            "eval ('1')",
            "lambda: 1",
            "[x for x in y]",
            "'abc'",
            "1 .real",
            "1.real",
            "(x",
            "getattr(x, y)",
        ] {
            assert!(!g.accepts(bad), "{bad:?}");
        }
        assert!(!g.accepts(&"x+".repeat(400)));
        assert!(Grammar::Formula.accepts("y ~ x1 + C(group) + I(x2**2)"));
        assert!(!Grammar::Formula.accepts("y ~ I(os.system('id'))"));
    }

    #[test]
    fn names_and_scipy_template() {
        assert!(Grammar::Names.accepts("a, b, c"));
        assert!(!Grammar::Names.accepts("a, b): pass\nimport os#"));
        let good = "\ndef _parse_args(self, a,  loc=0, scale=1):\n    return (a, ), loc, scale\n\ndef _parse_args_rvs(self, a,  loc=0, scale=1, size=None):\n    return self._argcheck_rvs(a,  loc, scale, size=size)\n\ndef _parse_args_stats(self, a,  loc=0, scale=1, moments='mv'):\n    return (a, ), loc, scale, moments\n";
        assert!(Grammar::ScipyArgParser.accepts(good));
        let none = "\ndef _parse_args(self,  loc=0):\n    return (), loc, 1\n\ndef _parse_args_rvs(self,  loc=0, size=None):\n    return self._argcheck_rvs( loc, 1, size=size)\n\ndef _parse_args_stats(self,  loc=0, moments='mv'):\n    return (), loc, 1, moments\n";
        assert!(Grammar::ScipyArgParser.accepts(none));
        let evil = good.replace(
            "return (a, ), loc, scale\n",
            "return __import__('os').system('id')\n",
        );
        assert!(!Grammar::ScipyArgParser.accepts(&evil));
        assert!(!Grammar::ScipyArgParser.accepts(&format!("{good}import os\n")));
    }

    #[test]
    fn no_pattern_accepts_everything() {
        assert_eq!(ArgPattern::parse("any", 1), Ok(ArgPattern::Data));
        assert!(ArgPattern::parse("any", 2).is_err());
        assert!(ArgPattern::parse("grammar:nope", 2).is_err());
    }
}
