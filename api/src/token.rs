//! The API's bearer token: a random secret in a file created on first start with mode 0600,
//! read by `vswitchctl` from the same file.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing::{info, warn};

/// The token file's name in the state directory.
pub const TOKEN_FILE: &str = "api-token";
/// Where the token lives when there is no state directory.
pub const RUN_TOKEN_FILE: &str = "/run/vswitch/api-token";
/// The state directory deploy/ uses.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vswitch";

/// The default token file: in the state directory, else under /run/vswitch.
pub fn default_path(state_dir: Option<&Path>) -> PathBuf {
    match state_dir {
        Some(d) => d.join(TOKEN_FILE),
        None => PathBuf::from(RUN_TOKEN_FILE),
    }
}

/// Reads the token at `path`, creating the file (mode 0600, 32 random bytes as hex) if it
/// does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    match read(path) {
        Ok(t) => {
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    warn!(file = %path.display(), "the API token file is readable by others; chmod 600 it");
                }
            }
            return Ok(t);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("API token file {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {} for the API token", dir.display()))?;
    }
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .context("reading /dev/urandom for the API token")?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    // Write a private temporary file, then link it into place: a concurrent starter either
    // creates the file or finds it complete, never half written.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    };
    let made = write().and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match made {
        Ok(()) => {
            info!(file = %path.display(), "created the API token file");
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(path).with_context(|| format!("API token file {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("creating API token file {}", path.display())),
    }
}

/// Reads a token file (its first line, trimmed); an empty one is an error.
pub fn read(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let t = text.lines().next().unwrap_or("").trim().to_string();
    if t.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the token file is empty",
        ));
    }
    Ok(t)
}

/// Compares in time independent of where the inputs differ.
pub fn equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
