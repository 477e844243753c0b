//! User blocks (`PickleGuard(blocked_modules=...)` in Python): a blocked global becomes a
//! catalogue entry, so the scan reports it as a dangerous import, and no allow entry (profile,
//! policy file or user) lets it through.

use super::{Category, DangerEntry, Policy};
use crate::report::Severity;

impl Policy {
    /// Block `module:name`. `name` may be `*` (every name of the module); a module ending in
    /// `.*` also covers its submodules (`torch.*` blocks `torch` and `torch.hub`).
    pub fn block(&mut self, module: &str, name: &str) {
        let module = self.norm_module(module).to_string();
        let entry = DangerEntry {
            module: module.clone(),
            names: vec![name.to_string()],
            category: Category::Blocked,
            severity: Severity::High,
            description: "blocked".to_string(),
        };
        if let Some(prefix) = module.strip_suffix(".*") {
            self.tables
                .get_mut()
                .danger_prefix
                .push((prefix.to_string(), entry));
        } else {
            self.tables
                .get_mut()
                .danger_exact
                .entry(module)
                .or_default()
                .push(entry);
        }
    }

    /// Whether a user block covers this (normalised) global.
    pub(super) fn is_blocked(&self, module: &str, name: &str) -> bool {
        let first = name.split('.').next().unwrap_or(name);
        let hit = |e: &DangerEntry| {
            e.category == Category::Blocked
                && e.names.iter().any(|n| n == "*" || n == name || n == first)
        };
        if let Some(list) = self.tables.get().danger_exact.get(module) {
            if list.iter().any(hit) {
                return true;
            }
        }
        self.tables.get().danger_prefix.iter().any(|(p, e)| {
            (module == p
                || (module.starts_with(p.as_str())
                    && module.as_bytes().get(p.len()) == Some(&b'.')))
                && hit(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::{Mode, Policy};

    #[test]
    fn a_block_beats_every_allow() {
        let mut p = Policy::new(Mode::Ml);
        p.allow("myapp", "*");
        p.allow("myapp.models", "User");
        p.block("myapp.*", "*");
        for (m, n) in [("myapp", "thing"), ("myapp.models", "User")] {
            let v = p.judge(m, n);
            assert_eq!(v.allowed, 0, "{m}.{n}");
            assert!(v.danger.is_some(), "{m}.{n}");
        }
        assert_eq!(p.judge("other", "thing").allowed, 0);
        let mut p = Policy::new(Mode::Ml);
        p.block("collections", "OrderedDict");
        assert_eq!(p.judge("collections", "OrderedDict").allowed, 0);
    }
}
