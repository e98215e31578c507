//! Capture of what `tracing` logs, so a test can assert on a warning: for one call on this
//! thread ([`logged`]), or for the whole test process from every thread ([`captured_log`]),
//! for code that logs on threads of its own (the switch's PMDs).

use std::sync::{Arc, Mutex, OnceLock};

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Runs `f` with this thread's log going to a buffer; returns its result and the log.
pub fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    let cap = Captured::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(cap.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(sub, f);
    (out, cap.text())
}

/// Everything logged in this test process since the first call, from every thread. The
/// first call installs the process's global subscriber: call it before the code under test
/// runs, and do not install another one in the same test binary.
pub fn captured_log() -> String {
    static LOG: OnceLock<Captured> = OnceLock::new();
    let cap = LOG.get_or_init(|| {
        let cap = Captured::default();
        tracing_subscriber::fmt()
            .with_writer(cap.clone())
            .with_ansi(false)
            .init();
        cap
    });
    cap.text()
}
