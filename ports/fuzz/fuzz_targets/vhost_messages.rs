//! Fuzzed vhost-user message sequences into the real request handler.
//!
//! One `VhostUserPort::server` (2 queue pairs) lives for the whole process, on a socket in a
//! temp dir; each input is one connection to it, as a frontend (QEMU, DPDK) would make:
//! - optionally a valid setup first (owner, features, protocol features, a memory table over
//!   a memfd holding fuzzed bytes, vrings 0 and 1 configured, kicked and enabled), so the
//!   fuzzer starts from a running device;
//! - then the fuzzed messages: a known or any request code, valid or fuzzed header flags, a
//!   body shaped for a message type or any bytes, and fds attached with `SCM_RIGHTS`
//!   (memfds, eventfds, a pipe, `/dev/null`), or raw bytes that may break the framing;
//! - when the framing is intact, a `GET_FEATURES` whose reply says the handler has worked
//!   through everything before it; then one receive and one transmit burst on the port's
//!   queues, as a PMD would run them;
//! - the frontend closes its end and reads until the switch closes its own.
//!
//! Checked, beyond "never panics": the connection thread ends by itself once the frontend
//! hangs up (within 10 s, else the input is reported as a hang), the port then shows no
//! connection and no running vring, and bursts move at most `ports::BURST` frames.
//!
//! One port per process, not per input: dropping a port waits for its connection thread,
//! which polls its listener every 100 ms, so a port per input would cap the target at about
//! ten inputs a second. Each connection gets a fresh handler and is torn down at its end,
//! which is what the switch does for every frontend.
#![no_main]

use std::fs::File;
use std::io::{IoSlice, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use ports::vhost::VhostUserPort;
use ports::{Packet, Port, RxQueue, TxQueue, BURST};

/// Queue pairs of the port: vrings 0..4.
const QUEUE_PAIRS: u16 = 2;
/// Header flags: protocol version 1, and "reply needed".
const VERSION: u32 = 0x1;
const NEED_REPLY: u32 = 0x8;
/// Where the frontend's memory appears in its own address space (vring addresses are there).
const VA_BASE: u64 = 0x7f00_0000_0000;
/// The setup's guest memory.
const SETUP_MEM: u64 = 0x1_0000;
/// The setup's queue size and where each vring's rings lie in guest memory.
const SETUP_QSIZE: u32 = 64;
const SETUP_RING_AREA: u64 = 0x1000;
/// How long the switch may take to close its end after the frontend closed.
const HANGUP_WAIT: Duration = Duration::from_secs(10);

/// Request codes (vhost-user spec, "Front-end message types").
mod req {
    pub const GET_FEATURES: u32 = 1;
    pub const SET_FEATURES: u32 = 2;
    pub const SET_OWNER: u32 = 3;
    pub const SET_MEM_TABLE: u32 = 5;
    pub const SET_VRING_NUM: u32 = 8;
    pub const SET_VRING_ADDR: u32 = 9;
    pub const SET_VRING_BASE: u32 = 10;
    pub const SET_VRING_KICK: u32 = 12;
    pub const SET_VRING_CALL: u32 = 13;
    pub const GET_PROTOCOL_FEATURES: u32 = 15;
    pub const SET_PROTOCOL_FEATURES: u32 = 16;
    pub const SET_VRING_ENABLE: u32 = 18;
    /// The last code the `vhost` crate knows (GET_SHMEM_CONFIG).
    pub const LAST: u32 = 44;
}

/// What a PMD holds of the port: its queues and its burst's buffers.
struct Pmd {
    rxq: Box<dyn RxQueue>,
    txq: Box<dyn TxQueue>,
    pkts: Vec<Packet>,
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    port: VhostUserPort,
    pmd: Mutex<Pmd>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // The switch's own process ignores SIGPIPE (Rust's runtime does that before `main`;
        // libFuzzer's `main` does not): a frontend that hangs up before a reply is an EPIPE
        // for the connection thread, not a signal.
        // SAFETY: SIG_IGN installs no handler code; nothing else here manages SIGPIPE.
        unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigIgn,
            )
        }
        .expect("ignoring SIGPIPE");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fuzz.sock");
        let mut port = VhostUserPort::server(&path, QUEUE_PAIRS).expect("server port");
        let rxq = port.take_rxq(0).expect("rxq 0");
        let txq = port.txq(0).expect("txq 0");
        let pkts = (0..BURST).map(|_| Packet::new()).collect();
        Fixture {
            _dir: dir,
            path,
            port,
            pmd: Mutex::new(Pmd { rxq, txq, pkts }),
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Flags {
    Plain,
    NeedReply,
    Raw(u32),
}

/// A frontend virtual (or guest physical) address: near the memory the setup maps, or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Addr {
    Near(u16),
    Raw(u64),
}

impl Addr {
    fn va(self) -> u64 {
        match self {
            Addr::Near(off) => VA_BASE + u64::from(off),
            Addr::Raw(a) => a,
        }
    }
    fn gpa(self) -> u64 {
        match self {
            Addr::Near(off) => u64::from(off),
            Addr::Raw(a) => a,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct RegionSpec {
    gpa: Addr,
    size: Addr,
    va: Addr,
    offset: Addr,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Empty,
    U64(u64),
    /// `VhostUserVringState`: index, num.
    State(u32, u32),
    /// `VhostUserVringAddr`.
    VringAddr {
        index: u32,
        flags: u32,
        desc: Addr,
        used: Addr,
        avail: Addr,
        log: Addr,
    },
    /// `VhostUserMemory` with its regions.
    MemTable(Vec<RegionSpec>),
    /// `VhostUserLog`: size, offset.
    Log(Addr, Addr),
    Bytes(Vec<u8>),
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            Body::Empty => {}
            Body::U64(v) => b.extend_from_slice(&v.to_le_bytes()),
            Body::State(i, n) => {
                b.extend_from_slice(&i.to_le_bytes());
                b.extend_from_slice(&n.to_le_bytes());
            }
            Body::VringAddr {
                index,
                flags,
                desc,
                used,
                avail,
                log,
            } => {
                b.extend_from_slice(&index.to_le_bytes());
                b.extend_from_slice(&flags.to_le_bytes());
                for a in [desc, used, avail] {
                    b.extend_from_slice(&a.va().to_le_bytes());
                }
                b.extend_from_slice(&log.gpa().to_le_bytes());
            }
            Body::MemTable(regions) => {
                let regions = &regions[..regions.len().min(10)];
                b.extend_from_slice(&(regions.len() as u32).to_le_bytes());
                b.extend_from_slice(&0u32.to_le_bytes());
                for r in regions {
                    for v in [r.gpa.gpa(), r.size.gpa(), r.va.va(), r.offset.gpa()] {
                        b.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
            Body::Log(size, offset) => {
                b.extend_from_slice(&size.gpa().to_le_bytes());
                b.extend_from_slice(&offset.gpa().to_le_bytes());
            }
            Body::Bytes(bytes) => b.extend_from_slice(&bytes[..bytes.len().min(0x1100)]),
        }
        b
    }
}

/// An fd to attach.
#[derive(Arbitrary, Debug)]
enum FdKind {
    /// A memfd of this many 4 KiB pages (sparse: costs nothing).
    Memfd(u8),
    EventFd,
    Pipe,
    DevNull,
}

impl FdKind {
    fn open(&self) -> OwnedFd {
        match *self {
            FdKind::Memfd(pages) => {
                let f = memfd(u64::from(pages) * 0x1000);
                f.into()
            }
            FdKind::EventFd => eventfd(),
            FdKind::Pipe => nix::unistd::pipe().expect("pipe").0,
            FdKind::DevNull => File::open("/dev/null").expect("/dev/null").into(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Msg {
    /// A well-framed message: the header's size is the body's.
    Framed {
        /// Folded into `1..=req::LAST` (known codes), unless `any_code`.
        code: u32,
        any_code: bool,
        flags: Flags,
        body: Body,
        fds: Vec<FdKind>,
    },
    /// Bytes as they are: a truncated header, a size that lies, anything.
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    setup: bool,
    /// Virtio features the setup acks (what was not offered is masked out).
    features: u64,
    msgs: Vec<Msg>,
    /// The setup's guest memory, from its start.
    memory: Vec<u8>,
}

fn memfd(size: u64) -> File {
    let f = File::from(memfd_create(c"fuzz-guest", MFdFlags::MFD_ALLOW_SEALING).expect("memfd"));
    f.set_len(size).expect("ftruncate");
    f
}

fn eventfd() -> OwnedFd {
    EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK)
        .expect("eventfd")
        .into()
}

/// The frontend's side of the socket. Messages without fds are batched into one write (a
/// message with fds goes alone: its fds travel with its first byte), which halves the
/// syscalls of an input; the switch reads the same byte stream either way.
struct Frontend<'a> {
    sock: &'a UnixStream,
    batch: Vec<u8>,
    /// False once the switch has hung up.
    up: bool,
}

impl<'a> Frontend<'a> {
    fn new(sock: &'a UnixStream) -> Frontend<'a> {
        Frontend {
            sock,
            batch: Vec::new(),
            up: true,
        }
    }

    /// Queues (or, with fds, sends) one message.
    fn send(&mut self, code: u32, flags: u32, body: &[u8], fds: &[RawFd]) -> bool {
        let mut msg = Vec::with_capacity(12 + body.len());
        msg.extend_from_slice(&code.to_le_bytes());
        msg.extend_from_slice(&flags.to_le_bytes());
        msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
        msg.extend_from_slice(body);
        self.send_raw(&msg, fds)
    }

    /// Queues (or, with fds, sends) bytes as they are.
    fn send_raw(&mut self, bytes: &[u8], fds: &[RawFd]) -> bool {
        if fds.is_empty() {
            self.batch.extend_from_slice(bytes);
            return self.up;
        }
        self.flush() && {
            self.up = send_raw(self.sock, bytes, fds);
            self.up
        }
    }

    /// Writes what is queued. False when the switch has hung up.
    fn flush(&mut self) -> bool {
        if self.up && !self.batch.is_empty() {
            self.up = send_raw(self.sock, &self.batch, &[]);
        }
        self.batch.clear();
        self.up
    }
}

fn send_raw(sock: &UnixStream, mut bytes: &[u8], fds: &[RawFd]) -> bool {
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let mut first = true;
    while !bytes.is_empty() {
        let iov = [IoSlice::new(bytes)];
        let c = if first { cmsgs } else { &[] };
        match sendmsg::<UnixAddr>(sock.as_raw_fd(), &iov, c, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
        first = false;
    }
    true
}

/// The valid start of a session: a device with vrings 0 and 1 running over `memory`.
fn setup(fe: &mut Frontend<'_>, features: u64, memory: &[u8]) -> bool {
    use ports::vhost::handler::*;
    // What the port offers (`Handler::offered_features`): LOG_ALL is bit 26,
    // PROTOCOL_FEATURES bit 30; MQ with more than one queue pair; the offloads (with CSUM
    // the transmit path reads each frame's header).
    let offered = VIRTIO_F_VERSION_1
        | OFFLOAD_FEATURES
        | VIRTIO_NET_F_MRG_RXBUF
        | VIRTIO_F_RING_EVENT_IDX
        | VIRTIO_F_RING_INDIRECT_DESC
        | VIRTIO_F_IN_ORDER
        | VIRTIO_NET_F_MQ
        | (1 << 26)
        | (1 << 30);
    // VERSION_1 and PROTOCOL_FEATURES always; the others as the input says.
    let features = (features & offered) | VIRTIO_F_VERSION_1 | (1 << 30);
    let mem = memfd(SETUP_MEM);
    let n = memory.len().min(SETUP_MEM as usize);
    mem.write_all_at(&memory[..n], 0)
        .expect("guest memory write");
    let mut table = Vec::new();
    table.extend_from_slice(&1u32.to_le_bytes());
    table.extend_from_slice(&0u32.to_le_bytes());
    for v in [0, SETUP_MEM, VA_BASE, 0] {
        table.extend_from_slice(&v.to_le_bytes());
    }
    let state = |i: u32, n: u32| [i.to_le_bytes(), n.to_le_bytes()].concat();
    let mut ok = fe.send(req::SET_OWNER, VERSION, &[], &[])
        && fe.send(req::GET_FEATURES, VERSION, &[], &[])
        && fe.send(req::SET_FEATURES, VERSION, &features.to_le_bytes(), &[])
        && fe.send(req::GET_PROTOCOL_FEATURES, VERSION, &[], &[])
        // MQ, REPLY_ACK, LOG_SHMFD.
        && fe.send(req::SET_PROTOCOL_FEATURES, VERSION, &0b1011u64.to_le_bytes(), &[])
        && fe.send(req::SET_MEM_TABLE, VERSION, &table, &[mem.as_raw_fd()]);
    for v in 0..2u32 {
        let base = VA_BASE + u64::from(v) * SETUP_RING_AREA;
        let mut addr = Vec::new();
        addr.extend_from_slice(&v.to_le_bytes());
        addr.extend_from_slice(&0u32.to_le_bytes());
        // desc, used, avail, log.
        for a in [base, base + 0x600, base + 0x400, 0] {
            addr.extend_from_slice(&a.to_le_bytes());
        }
        let (kick, call) = (eventfd(), eventfd());
        let idx = u64::from(v).to_le_bytes();
        ok = ok
            && fe.send(req::SET_VRING_NUM, VERSION, &state(v, SETUP_QSIZE), &[])
            && fe.send(req::SET_VRING_ADDR, VERSION, &addr, &[])
            && fe.send(req::SET_VRING_BASE, VERSION, &state(v, 0), &[])
            && fe.send(req::SET_VRING_KICK, VERSION, &idx, &[kick.as_raw_fd()])
            && fe.send(req::SET_VRING_CALL, VERSION, &idx, &[call.as_raw_fd()])
            && fe.send(req::SET_VRING_ENABLE, VERSION, &state(v, 1), &[]);
    }
    ok
}

/// Reads replies until `want` replies to `GET_FEATURES` have come, or the switch hung up.
/// False on a hang-up.
fn wait_replies(sock: &mut UnixStream, want: usize) -> bool {
    let mut seen = 0;
    while seen < want {
        let mut hdr = [0u8; 12];
        if read_exact_or_eof(sock, &mut hdr).is_none() {
            return false;
        }
        let code = u32::from_le_bytes(hdr[..4].try_into().unwrap());
        let size = u32::from_le_bytes(hdr[8..].try_into().unwrap()) as usize;
        assert!(size <= 0x1000, "a reply of {size} bytes");
        let mut body = vec![0u8; size];
        if read_exact_or_eof(sock, &mut body).is_none() {
            return false;
        }
        if code == req::GET_FEATURES {
            seen += 1;
        }
    }
    true
}

/// `Some` when `buf` was filled, `None` at EOF (or a reset). Panics when the switch says
/// nothing for [`HANGUP_WAIT`].
fn read_exact_or_eof(sock: &mut UnixStream, buf: &mut [u8]) -> Option<()> {
    let mut at = 0;
    while at < buf.len() {
        match sock.read(&mut buf[at..]) {
            Ok(0) => return None,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("the switch neither answered nor hung up for {HANGUP_WAIT:?}")
            }
            Err(_) => return None,
        }
    }
    Some(())
}

fuzz_target!(|input: Input| {
    let fx = fixture();
    let mut sock = UnixStream::connect(&fx.path).expect("connect");
    sock.set_read_timeout(Some(HANGUP_WAIT)).expect("timeout");
    let mut fe = Frontend::new(&sock);
    if input.setup {
        setup(&mut fe, input.features, &input.memory);
    }
    // GET_FEATURES replies to wait for before the bursts; none once the framing may be off.
    let mut marks = usize::from(input.setup);
    let mut framed = true;
    for m in input.msgs.iter().take(32) {
        if !fe.up {
            break;
        }
        match m {
            Msg::Framed {
                code,
                any_code,
                flags,
                body,
                fds,
            } => {
                let code = if *any_code {
                    *code
                } else {
                    1 + code % req::LAST
                };
                let flags = match flags {
                    Flags::Plain => VERSION,
                    Flags::NeedReply => VERSION | NEED_REPLY,
                    Flags::Raw(f) => *f,
                };
                let owned: Vec<OwnedFd> = fds.iter().take(8).map(FdKind::open).collect();
                let raw: Vec<RawFd> = owned.iter().map(AsRawFd::as_raw_fd).collect();
                let body = body.bytes();
                if code == req::GET_FEATURES && flags == VERSION && body.is_empty() {
                    marks += 1;
                }
                fe.send(code, flags, &body, &raw);
            }
            Msg::Raw(bytes) => {
                framed = false;
                fe.send_raw(bytes, &[]);
            }
        }
    }
    if framed {
        // The marker: once its reply is here, the handler has worked through everything.
        fe.send(req::GET_FEATURES, VERSION, &[], &[]);
        if fe.flush() && wait_replies(&mut sock, marks + 1) {
            let mut pmd = fx.pmd.lock().unwrap_or_else(|e| e.into_inner());
            let Pmd { rxq, txq, pkts } = &mut *pmd;
            let n = rxq.rx_burst(pkts);
            assert!(n <= BURST, "received {n} frames in one burst");
            let sent = txq.tx_burst(&mut pkts[..n]);
            assert!(sent <= n, "sent {sent} of {n} frames");
        }
    } else {
        fe.flush();
    }
    // Hang up, then read whatever is left until the switch closes its end.
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    match sock.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            panic!("the switch did not hang up within {HANGUP_WAIT:?} of the frontend")
        }
        Err(_) => {}
    }
    drop(sock);
    assert!(!fx.port.is_connected(), "still connected after the hang-up");
    let stats = fx.port.stats();
    assert!(
        stats.vrings.iter().all(|v| !v.running),
        "a vring runs without a frontend: {stats:?}"
    );
    let _ = fx.port.guest_faults();
});
