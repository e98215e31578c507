//! Config files: parsing TOML text into a [`Config`], and placing a problem at the line and
//! column of the value it is about.

use super::problem::{PathSeg, Problem};
use super::Config;

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the model.
    #[error("{file}:{line}:{col}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What the parser said.
        message: String,
    },
    /// The file parsed but a value is wrong.
    #[error("{file}:{line}:{col}: {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line of the offending value (or its table).
        line: usize,
        /// 1-based column.
        col: usize,
        /// Field path and reason.
        problem: Problem,
    },
}

impl Config {
    /// Parses and validates TOML text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Syntax {
                file: file.to_string(),
                line,
                col,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.validate().map_err(|problem| {
            let offset = span_of(text, &problem.path).unwrap_or(0);
            let (line, col) = line_col(text, offset);
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                col,
                problem,
            }
        })?;
        Ok(cfg)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::from_toml(&text, &file)
    }
}

/// The byte offset of the deepest element of `path` present in the document.
fn span_of(text: &str, path: &[PathSeg]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best = doc.span().start;
    let mut cur: Option<&toml::de::DeValue<'_>> = None;
    let mut table = Some(doc.get_ref());
    for seg in path {
        let next = match (seg, cur, table) {
            (PathSeg::Key(k), None, Some(t)) => t.get(k.as_str()),
            (PathSeg::Key(k), Some(v), _) => v.get(k.as_str()),
            (PathSeg::Index(i), Some(v), _) => v.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        best = next.span().start;
        cur = Some(next.get_ref());
        table = None;
    }
    Some(best)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}
