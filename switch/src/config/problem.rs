//! Validation problems: what is wrong and where in the config it is (`flow[2].match.ip_dst`),
//! and whether it is malformed or at odds with what exists (the REST API's 400, 404, 409).

/// One step of a path into the config (`flow[2].match.ip_dst`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A validation problem: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", render_path(path))]
pub struct Problem {
    /// Where in the config.
    pub path: Vec<PathSeg>,
    /// What is wrong.
    pub message: String,
    /// Whether the value is malformed, or well-formed but at odds with what exists.
    pub kind: ProblemKind,
}

/// What kind of problem a [`Problem`] is (the REST API answers 400, 404 and 409 for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProblemKind {
    /// The value is wrong whatever else exists.
    #[default]
    Invalid,
    /// The value names a port that does not exist (a flow's `in_port` or `output:`).
    NoSuchPort,
    /// The value clashes with another port (a second underlay, a VNI already carried to
    /// that remote).
    Conflict,
}

impl Problem {
    /// The same problem, its path now starting with `prefix` (the problem of a port's
    /// `name` is that of `port[3].name` in the file).
    pub fn within(mut self, prefix: impl IntoIterator<Item = PathSeg>) -> Problem {
        self.path.splice(0..0, prefix);
        self
    }
}

/// The path as the config writes it: `flow[2].match.ip_dst`.
pub fn render_path(path: &[PathSeg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathSeg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A path step naming table key `k`.
pub(crate) fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

/// An [`ProblemKind::Invalid`] problem at `path`.
pub(crate) fn problem(path: Vec<PathSeg>, message: impl Into<String>) -> Problem {
    Problem {
        path,
        message: message.into(),
        kind: ProblemKind::Invalid,
    }
}

/// A problem of kind `kind`.
pub(crate) fn problem_of(
    kind: ProblemKind,
    path: Vec<PathSeg>,
    message: impl Into<String>,
) -> Problem {
    Problem {
        kind,
        ..problem(path, message)
    }
}
