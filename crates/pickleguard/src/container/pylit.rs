//! A small parser for the Python literals of a `.npy` header (what `ast.literal_eval` accepts
//! there: dicts, lists, tuples, strings, numbers, True/False/None).

#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Num,
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    /// A dict's value for `key`: the last one when the key repeats, as `ast.literal_eval`
    /// builds the dict.
    pub fn get(&self, key: &str) -> Option<&Lit> {
        self.get_all(key).pop()
    }

    /// Every value a dict literal gives `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<&Lit> {
        let kv: &[(Lit, Lit)] = match self {
            Lit::Dict(kv) => kv,
            _ => &[],
        };
        kv.iter()
            .filter(|(k, _)| matches!(k, Lit::Str(s) if s == key))
            .map(|(_, v)| v)
            .collect()
    }

    /// The string keys a dict literal gives more than once.
    pub fn repeated_keys(&self) -> Vec<&str> {
        let Lit::Dict(kv) = self else {
            return Vec::new();
        };
        let mut out: Vec<&str> = Vec::new();
        for (i, (k, _)) in kv.iter().enumerate() {
            if let Lit::Str(s) = k {
                let again = kv[..i].iter().any(|(k2, _)| k2 == k);
                if again && !out.contains(&s.as_str()) {
                    out.push(s);
                }
            }
        }
        out
    }
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

pub fn parse(text: &str) -> Option<Lit> {
    let mut p = P {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: u32) -> Option<Lit> {
        if depth > 64 {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.i += 1;
                let mut kv = Vec::new();
                loop {
                    if self.peek()? == b'}' {
                        self.i += 1;
                        return Some(Lit::Dict(kv));
                    }
                    let k = self.value(depth + 1)?;
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    kv.push((k, v));
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {}
                        _ => return None,
                    }
                }
            }
            c @ (b'[' | b'(') => {
                self.i += 1;
                let close = if c == b'[' { b']' } else { b')' };
                let mut items = Vec::new();
                let mut comma = false;
                loop {
                    if self.peek()? == close {
                        self.i += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    comma = false;
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            comma = true;
                        }
                        x if x == close => {}
                        _ => return None,
                    }
                }
                if c == b'[' {
                    Some(Lit::List(items))
                } else if items.len() == 1 && !comma {
                    items.pop()
                } else {
                    Some(Lit::Tuple(items))
                }
            }
            b'\'' | b'"' => self.string(),
            b'u' | b'U' | b'b' | b'B' | b'r' | b'R'
                if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) =>
            {
                self.i += 1;
                self.string()
            }
            _ => self.atom(),
        }
    }

    fn string(&mut self) -> Option<Lit> {
        let q = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            if c == q {
                return Some(Lit::Str(String::from_utf8_lossy(&out).into_owned()));
            }
            if c == b'\\' {
                let e = *self.s.get(self.i)?;
                self.i += 1;
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'0' if !self.s.get(self.i).is_some_and(u8::is_ascii_digit) => 0,
                    // Numeric escapes (`'\x64escr'` is `'descr'` to Python) and line
                    // continuations are not decoded here: the literal is unreadable, which
                    // the header reader treats as "may hold objects".
                    b'x' | b'u' | b'U' | b'N' | b'0'..=b'7' | b'\n' | b'\r' => return None,
                    other => other,
                });
            } else {
                out.push(c);
            }
        }
        None
    }

    fn atom(&mut self) -> Option<Lit> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"+-._".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        let w = &self.s[start..self.i];
        match w {
            b"True" => Some(Lit::Bool(true)),
            b"False" => Some(Lit::Bool(false)),
            b"None" => Some(Lit::None),
            _ if !w.is_empty() && (w[0].is_ascii_digit() || w[0] == b'-' || w[0] == b'+') => {
                Some(Lit::Num)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header() {
        let v = parse("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }    \n").unwrap();
        assert_eq!(v.get("descr"), Some(&Lit::Str("<f8".into())));
        assert_eq!(v.get("shape"), Some(&Lit::Tuple(vec![Lit::Num, Lit::Num])));
        let v = parse("{'descr': [('a', '<i4'), ('b', '|O', (2,))], 'shape': (3L,)}").unwrap();
        assert!(matches!(v.get("descr"), Some(Lit::List(l)) if l.len() == 2));
        assert!(parse("{'descr': '<f8'").is_none());
    }
}
