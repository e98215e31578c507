//! Child processes for tests: commands run to completion and checked, long-running peers
//! ([`Proc`]) whose output is read line by line and which are stopped by their PID (never
//! by name: other tests and other users run the same programs), and the checks that a peer
//! program is installed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Runs `cmd` to completion; panics with its status and output if it fails, or if it cannot
/// start (a tool is missing).
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: cannot start ({e}); is the tool installed?"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fails the test, naming the Debian package to install, unless `tool` is on the `PATH`.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} not found: install Debian's {package} (deploy/test.sh does)"
    );
}

/// True when the peer program `bin` (from Debian's `package`) runs. Missing, it is a test
/// failure telling how to install it, unless `skip_var` is set (by hand: deploy/test.sh
/// refuses to run with any `VSWITCH_SKIP_*` set): then the test passes without running, and
/// says so in a SKIPPED line that cargo shows.
pub fn require_peer(bin: &str, package: &str, skip_var: &str) -> bool {
    if Command::new(bin).arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os(skip_var).is_some() {
        // Written to stderr directly: the harness captures `eprintln!` and shows it only
        // for a failed test, and a skipped test passes.
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED: {} ({bin} not installed and {skip_var} is set) ***",
            std::thread::current().name().unwrap_or("a test")
        );
        return false;
    }
    panic!(
        "{bin} not found: install Debian's {package} (deploy/test.sh does), \
         or set {skip_var}=1 to skip loudly"
    );
}

/// A child process with its stdout and stderr merged into a line channel. Dropping it kills
/// the process by its PID and reaps it.
pub struct Proc {
    /// What the test calls it, in failure messages.
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Everything read so far, for failure messages.
    pub log: String,
}

impl Proc {
    /// Starts `cmd` with piped stdin, stdout and stderr.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(l);
            }
        });
        Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child: Some(child),
            lines: rx,
            log: String::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Waits for a line containing `pat`; panics with the log so far after `timeout`.
    pub fn wait_for(&mut self, pat: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.log.push_str(&l);
                    self.log.push('\n');
                    if l.contains(pat) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "{}: no line containing {pat:?} within {timeout:?}; output:\n{}",
                    self.name, self.log
                ),
            }
        }
    }

    /// Reads whatever output arrives within `d`.
    pub fn drain_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.log.push_str(&l);
            self.log.push('\n');
        }
    }

    /// Writes one line to the process's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends `sig` to the process and waits for it to exit (reading its output meanwhile).
    pub fn stop(&mut self, sig: Signal, timeout: Duration) -> ExitStatus {
        let _ = kill(self.pid(), sig);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.drain_for(Duration::from_millis(200));
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?} of {sig}; output:\n{}",
                self.name,
                self.log
            );
            self.drain_for(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // SIGKILL to this child's PID, then reap it.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Everything the test has read from each process, each under its name, for failure
/// messages.
pub fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("===== {} =====\n{}", p.name, p.log))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads every process's output until `done` says `procs[watched]`'s log is complete, or
/// panics with all logs after `timeout`.
pub fn watch(
    procs: &mut [&mut Proc],
    watched: usize,
    what: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        for p in procs.iter_mut() {
            p.drain_for(Duration::from_millis(50));
        }
        if done(&procs[watched].log) {
            return;
        }
        if Instant::now() >= deadline {
            let all: Vec<&Proc> = procs.iter().map(|p| &**p).collect();
            panic!("{what}: not seen within {timeout:?}\n{}", logs(&all));
        }
    }
}

/// The number after `key` in a line of a process's output: a testpmd statistic such as
/// `  TX-packets: 1234           TX-dropped: 5`, or a log field `key=1234`.
pub fn number_after(line: &str, key: &str) -> u64 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
        + key.len();
    line[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {line:?}"))
}
