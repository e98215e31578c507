//! Stopping one thread of another process (a PMD thread of a running vswitchd) with ptrace,
//! to test what the rest of the process does while it is stuck.

use nix::unistd::Pid;

/// The threads of process `pid`: (thread id, name).
pub fn threads(pid: Pid) -> Vec<(Pid, String)> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let e = e.unwrap();
        let Ok(tid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // A thread may exit between the listing and the read.
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            out.push((Pid::from_raw(tid), comm.trim().to_string()));
        }
    }
    out
}

/// One thread of another process, stopped with ptrace (`PTRACE_SEIZE`, then
/// `PTRACE_INTERRUPT`): only that thread stops, the rest of the process runs on. It resumes
/// when this is dropped (also when the test fails). ptrace ties a tracee to the tracing
/// thread: create and drop it on the same thread. Needs root (or CAP_SYS_PTRACE).
#[derive(Debug)]
pub struct FrozenThread {
    tid: Pid,
}

impl FrozenThread {
    /// Stops the thread of `pid` named `name` (e.g. `pmd0`) and waits until it is stopped.
    pub fn freeze(pid: Pid, name: &str) -> FrozenThread {
        use nix::sys::ptrace;
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        let tid = threads(pid)
            .into_iter()
            .find(|(_, n)| n == name)
            .unwrap_or_else(|| panic!("process {pid} has no thread named {name:?}"))
            .0;
        ptrace::seize(tid, ptrace::Options::empty())
            .unwrap_or_else(|e| panic!("PTRACE_SEIZE of {name} ({tid}): {e}"));
        let frozen = FrozenThread { tid };
        ptrace::interrupt(tid).unwrap_or_else(|e| panic!("PTRACE_INTERRUPT of {name}: {e}"));
        match waitpid(tid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(..) | WaitStatus::Stopped(..)) => frozen,
            other => panic!("{name} ({tid}) did not stop: {other:?}"),
        }
    }
}

impl Drop for FrozenThread {
    fn drop(&mut self) {
        let _ = nix::sys::ptrace::detach(self.tid, None);
    }
}
