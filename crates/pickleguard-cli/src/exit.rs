//! The exit status of a command (docs/cli.md, "Exit codes"; the binary's `--help` says the same).

/// What a command's exit code says. The numbers are the interface: scripts and CI jobs test
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Every file safe (or audit mode).
    Safe = 0,
    /// At least one file is not safe.
    Unsafe = 1,
    /// A usage error, an I/O error, or a file that could not be judged.
    Error = 2,
    /// Nothing was scanned (no file under the paths, or none could be read).
    Nothing = 3,
}

impl ExitStatus {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// `Safe` when `safe`, else `Unsafe`.
    pub const fn safe_if(safe: bool) -> ExitStatus {
        match safe {
            true => ExitStatus::Safe,
            false => ExitStatus::Unsafe,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitStatus;

    #[test]
    fn the_codes_are_the_documented_ones() {
        let codes = [
            ExitStatus::Safe,
            ExitStatus::Unsafe,
            ExitStatus::Error,
            ExitStatus::Nothing,
        ]
        .map(ExitStatus::code);
        assert_eq!(codes, [0, 1, 2, 3]);
        let table = include_str!("../../../docs/cli.md");
        for (code, start) in [
            (0, "| 0 | every file is safe"),
            (1, "| 1 | at least one file is not safe"),
            (2, "| 2 | a usage error"),
            (3, "| 3 | nothing was scanned"),
        ] {
            assert!(
                table.contains(start),
                "docs/cli.md lost the row of exit code {code}"
            );
        }
    }
}
