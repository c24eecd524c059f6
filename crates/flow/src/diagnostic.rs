//! Diagnostics: what `validate` and start-up report about a flow, with file, line, column and a hint.

use std::fmt;

use crate::positions::Position;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a flow file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &str, at: Position, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(file, at, Severity::Error, message.into())
    }

    pub fn warning(file: &str, at: Position, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(file, at, Severity::Warning, message.into())
    }

    fn new(file: &str, at: Position, severity: Severity, message: String) -> Diagnostic {
        Diagnostic {
            file: file.to_string(),
            line: at.line.max(1),
            column: at.column.max(1),
            severity,
            message,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, severity, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo: at most
/// two edits (a swap of neighbours counts as one), and fewer edits than the word has letters.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let length = word.chars().count();
    if length < 3 {
        return None;
    }
    let limit = (length / 3).clamp(1, 2);
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}
