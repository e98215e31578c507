//! A two-guest latency probe for a running switch (issue 12): it attaches to two vhost-user
//! server sockets as two guests (the test driver of `ports::vhost::test_utils`, in this one
//! process, so one clock times both ends), sends 64-byte frames into the first guest's
//! transmit ring and times their arrival in the second guest's receive ring. The switch must
//! forward the first port to the second (a rule `in_port=<tx> -> output:<rx>`).
//!
//! Two measurements:
//! - `wakeup`: one frame after each idle pause (longer than the switch's
//!   `pmd_sleep_after_us`, so its PMD is asleep in `epoll_wait`), kicked as a guest kicks:
//!   the time from the kick to the frame in the receive ring, over `--count` wake-ups.
//! - `gaps`: a steady stream at `--pps` for `--secs`: each frame's latency and the gaps
//!   between arrivals, to see whether something (a control-plane change) stalls forwarding.
//!   The probe's own longest pause between two polls is reported too: a gap no longer than
//!   that may be the probe's, not the switch's.
//!
//! - `floor`: no switch: a thread pinned to `--cpu` sleeps in `epoll_wait` on an eventfd,
//!   as a sleeping PMD does, and the probe times eventfd write to that thread running: what
//!   any sleeping poll-mode thread pays on this machine to wake (a virtual CPU that halted
//!   waits for its host to run it again), the floor under `wakeup`.
//!
//! - `c2c`: no switch: two threads pinned to CPU 0 and `--cpu` bounce one cache line
//!   (`--count` round trips, default 1000 per batch, 51 batches): the time of one transfer
//!   between the two cores. This host has two speeds that switch for seconds at a time, and
//!   its slow one is cross-core transfers at about three times their usual cost: a c2c
//!   reading beside each end-to-end run says which state that run caught.
//!
//! Output: `key=value` lines on stdout (the `bench/e2e/latency.sh` harness parses them).
//!
//!     cargo run --release -p bench --example vhost_probe -- wakeup --tx A.sock --rx B.sock
//!     ... gaps --tx A.sock --rx B.sock --pps 200000 --secs 6
//!
//! Both guests set `VRING_AVAIL_F_NO_INTERRUPT` (a poll-mode driver, as testpmd's
//! virtio-user): the switch never signals them; the sender kicks only when the switch asks
//! for kicks (`VRING_USED_F_NO_NOTIFY` clear), which it does while its PMD sleeps.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::unistd::Pid;
use ports::vhost::test_utils::{Guest, DESC_F_WRITE, PACKED, QSIZE};
use vm_memory::{Bytes, GuestAddress};

/// virtio-net header the test driver writes before each frame.
const HDR: u64 = 12;
/// Frame length on the wire (without the virtio-net header).
const FRAME: usize = 64;
/// Receive buffer length (header + a full-size frame).
const RX_BUF: u32 = 2048;
/// Where in the frame the sequence number and the send time go (after the Ethernet header).
const SEQ_AT: usize = 14;
const TS_AT: usize = 22;
/// Transmit ring (vring 1) and receive ring (vring 0) of a queue pair.
const TXQ: usize = 1;
const RXQ: usize = 0;
/// `VRING_AVAIL_F_NO_INTERRUPT` and the packed ring's `RING_EVENT_FLAGS_DISABLE`.
const NO_INTERRUPT: u16 = 1;
const EVENT_DISABLE: u16 = 1;
/// How long a frame may take before it counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(1);

struct Args {
    mode: String,
    tx: PathBuf,
    rx: PathBuf,
    packed: bool,
    count: usize,
    idle: Duration,
    pps: u64,
    secs: f64,
    cpu: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: vhost_probe wakeup|gaps --tx SOCK --rx SOCK ...")?;
    if !["wakeup", "gaps", "floor", "c2c"].contains(&mode.as_str()) {
        return Err(format!(
            "unknown mode {mode:?} (wakeup, gaps, floor or c2c)"
        ));
    }
    let mut a = Args {
        mode,
        tx: PathBuf::new(),
        rx: PathBuf::new(),
        packed: false,
        count: 1000,
        idle: Duration::from_micros(1000),
        pps: 200_000,
        secs: 6.0,
        cpu: 1,
    };
    while let Some(flag) = it.next() {
        if flag == "--packed" {
            a.packed = true;
            continue;
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |what: &str| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("{what} must be a whole number, not {v:?}"))
        };
        match flag.as_str() {
            "--tx" => a.tx = v.clone().into(),
            "--rx" => a.rx = v.clone().into(),
            "--count" => a.count = num("--count")? as usize,
            "--idle-us" => a.idle = Duration::from_micros(num("--idle-us")?),
            "--pps" => a.pps = num("--pps")?.max(1),
            "--cpu" => a.cpu = num("--cpu")? as usize,
            "--secs" => a.secs = v.parse().map_err(|_| format!("--secs: bad number {v:?}"))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !["floor", "c2c"].contains(&a.mode.as_str())
        && (a.tx.as_os_str().is_empty() || a.rx.as_os_str().is_empty())
    {
        return Err("--tx and --rx are required".into());
    }
    Ok(a)
}

/// One direction through the switch: the sending guest's transmit ring and the receiving
/// guest's receive ring, with fixed buffers recycled in ring order.
struct Path {
    tx: Guest,
    rx: Guest,
    packed: bool,
    /// Transmit buffers, one per ring slot; `sent % QSIZE` picks the next one.
    tx_bufs: Vec<u64>,
    /// Frames in the transmit ring the switch has not returned yet.
    tx_outstanding: usize,
    /// Receive buffer address by buffer id (split: head descriptor; packed: buffer id).
    rx_addr: Vec<u64>,
    sent: u64,
    start: Instant,
}

impl Path {
    fn new(a: &Args) -> Path {
        let features = if a.packed { PACKED } else { 0 };
        let mut tx = Guest::connect(&a.tx, 1, features);
        let mut rx = Guest::connect(&a.rx, 1, features);
        let packed = tx.features & PACKED != 0;
        for g in [&tx, &rx] {
            for v in [RXQ, TXQ] {
                if packed {
                    g.set_driver_event(v, 0, EVENT_DISABLE);
                } else {
                    g.set_avail_flags(v, NO_INTERRUPT);
                }
            }
        }
        let tx_bufs = (0..QSIZE).map(|_| tx.alloc(HDR + FRAME as u64)).collect();
        let mut rx_addr = vec![0; usize::from(QSIZE)];
        for (id, addr) in rx.post_rx_buffers(usize::from(QSIZE), RX_BUF) {
            rx_addr[usize::from(id)] = addr;
        }
        rx.make_available(RXQ);
        // The sender's receive ring gets buffers too, should the switch send it anything.
        let _ = tx.post_rx_buffers(16, RX_BUF);
        tx.make_available(RXQ);
        Path {
            tx,
            rx,
            packed,
            tx_bufs,
            tx_outstanding: 0,
            rx_addr,
            sent: 0,
            start: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Room in the transmit ring.
    fn tx_room(&self) -> usize {
        usize::from(QSIZE) - self.tx_outstanding
    }

    /// Writes and queues one frame carrying its sequence number and `ts` (not yet published).
    fn queue_frame(&mut self, ts: u64) {
        let addr = self.tx_bufs[(self.sent % u64::from(QSIZE)) as usize];
        let mut f = [0u8; FRAME];
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        // IEEE 802 local experimental ethertype: no rule but the port rule looks at it.
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        f[SEQ_AT..SEQ_AT + 8].copy_from_slice(&self.sent.to_le_bytes());
        f[TS_AT..TS_AT + 8].copy_from_slice(&ts.to_le_bytes());
        self.tx
            .mem
            .write_slice(&[0u8; HDR as usize], GuestAddress(addr))
            .unwrap();
        self.tx
            .mem
            .write_slice(&f, GuestAddress(addr + HDR))
            .unwrap();
        self.tx
            .add_chain(TXQ, &[(addr, HDR as u32 + FRAME as u32, 0)]);
        self.tx_outstanding += 1;
        self.sent += 1;
    }

    /// Publishes the queued frames; kicks only when the switch asks for kicks.
    fn send(&mut self) {
        self.tx.publish_as_driver(TXQ);
    }

    /// Takes back transmit buffers the switch has returned.
    fn reclaim(&mut self) {
        self.tx_outstanding -= self.tx.take_used(TXQ).len();
    }

    /// Frames that arrived: (sequence number, send time) each; their buffers go back.
    fn receive(&mut self, out: &mut Vec<(u64, u64)>) {
        let used = self.rx.take_used(RXQ);
        if used.is_empty() {
            return;
        }
        for (id, _len) in used {
            let addr = self.rx_addr[id as usize];
            let mut b = [0u8; 16];
            self.rx
                .mem
                .read_slice(&mut b, GuestAddress(addr + HDR + SEQ_AT as u64))
                .unwrap();
            let seq = u64::from_le_bytes(b[..8].try_into().unwrap());
            let ts = u64::from_le_bytes(b[8..].try_into().unwrap());
            out.push((seq, ts));
            let nid = self.rx.add_chain(RXQ, &[(addr, RX_BUF, DESC_F_WRITE)]);
            self.rx_addr[usize::from(nid)] = addr;
        }
        self.rx.make_available(RXQ);
    }
}

/// The `p`-quantile of sorted `v` (nearest rank).
fn quantile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

fn wakeup(a: &Args) {
    let mut p = Path::new(a);
    let mut got = Vec::new();
    let mut lat = Vec::with_capacity(a.count);
    let mut lost = 0u64;
    for _ in 0..a.count {
        std::thread::sleep(a.idle);
        got.clear();
        let t0 = p.now_ns();
        p.queue_frame(t0);
        p.send();
        let deadline = Instant::now() + LOST_AFTER;
        loop {
            p.receive(&mut got);
            if !got.is_empty() {
                let l = p.now_ns() - t0;
                if std::env::var_os("PROBE_TRACE").is_some() && l > 1_000_000 {
                    eprintln!("wake-up {} took {} us", lat.len(), l / 1000);
                }
                lat.push(l);
                break;
            }
            if Instant::now() > deadline {
                lost += 1;
                break;
            }
            std::hint::spin_loop();
        }
        p.reclaim();
    }
    lat.sort_unstable();
    println!(
        "mode=wakeup ring={}",
        if p.packed { "packed" } else { "split" }
    );
    println!("{}", wake_line(&lat, lost, a.idle));
}

/// Quantiles of wake-up latencies (sorted) as one `key=value` line.
fn wake_line(lat: &[u64], lost: u64, idle: Duration) -> String {
    let over = lat.iter().filter(|&&l| l > 50_000).count();
    format!(
        "wakeups={} lost={lost} idle_us={} min_us={} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} over_50us={over}",
        lat.len(),
        idle.as_micros(),
        us(quantile(lat, 0.0)),
        us(quantile(lat, 0.5)),
        us(quantile(lat, 0.9)),
        us(quantile(lat, 0.99)),
        us(quantile(lat, 0.999)),
        us(lat.last().copied().unwrap_or(0)),
    )
}

fn floor(a: &Args) {
    let efd = Arc::new(EventFd::from_flags(EfdFlags::EFD_NONBLOCK).expect("eventfd"));
    let woke = Arc::new(AtomicU64::new(0));
    let (cpu, count) = (a.cpu, a.count as u64);
    let sleeper = {
        let (efd, woke) = (efd.clone(), woke.clone());
        std::thread::spawn(move || {
            pin(cpu);
            let ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll");
            ep.add(efd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0))
                .expect("epoll add");
            let mut ev = [EpollEvent::empty(); 1];
            for i in 1..=count {
                while efd.read().is_err() {
                    let _ = ep.wait(&mut ev, EpollTimeout::from(1000u16));
                }
                woke.store(i, Ordering::Release);
            }
        })
    };
    let start = Instant::now();
    let mut lat = Vec::with_capacity(a.count);
    for i in 1..=count {
        std::thread::sleep(a.idle);
        let t0 = start.elapsed().as_nanos() as u64;
        efd.write(1).expect("eventfd write");
        while woke.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        lat.push(start.elapsed().as_nanos() as u64 - t0);
    }
    sleeper.join().expect("the sleeping thread");
    lat.sort_unstable();
    println!("mode=floor cpu={}", a.cpu);
    println!("{}", wake_line(&lat, 0, a.idle));
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).expect("cpu number");
    sched_setaffinity(Pid::from_raw(0), &set).expect("pin");
}

/// One cache line, alone on it.
#[repr(align(64))]
struct Line(AtomicU64);

fn c2c(a: &Args) {
    const BATCHES: usize = 51;
    let line = Arc::new(Line(AtomicU64::new(0)));
    let (cpu, rounds) = (a.cpu, a.count as u64);
    let total = rounds * BATCHES as u64;
    let echo = {
        let line = line.clone();
        std::thread::spawn(move || {
            pin(cpu);
            // Odd values are the pinger's, even ones the echo's.
            for i in 0..total {
                while line.0.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                line.0.store(2 * i + 2, Ordering::Release);
            }
        })
    };
    pin(0);
    let mut per_batch = Vec::with_capacity(BATCHES);
    for b in 0..BATCHES as u64 {
        let t = Instant::now();
        for i in b * rounds..(b + 1) * rounds {
            line.0.store(2 * i + 1, Ordering::Release);
            while line.0.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
        }
        // A round trip is two transfers.
        per_batch.push(t.elapsed().as_nanos() as u64 / (2 * rounds));
    }
    echo.join().expect("the echo thread");
    per_batch.sort_unstable();
    println!(
        "mode=c2c cpus=0,{} transfer_ns={} min_ns={} max_ns={}",
        a.cpu,
        quantile(&per_batch, 0.5),
        per_batch[0],
        per_batch[BATCHES - 1]
    );
}

fn gaps(a: &Args) {
    let mut p = Path::new(a);
    let interval = 1_000_000_000 / a.pps;
    let end = (a.secs * 1e9) as u64;
    let mut got = Vec::with_capacity(usize::from(QSIZE));
    let mut lat = Vec::with_capacity((a.pps as f64 * a.secs) as usize + 16);
    let (mut received, mut lost, mut next_seq) = (0u64, 0u64, 0u64);
    let mut last_arrival = None::<u64>;
    // (gap, when it ended), the largest few.
    let mut worst: Vec<(u64, u64)> = Vec::new();
    let mut loop_gap = 0u64;
    let mut prev = p.now_ns();
    // Past `end`: half a second more to receive what is in flight.
    while prev < end + 500_000_000 {
        let now = p.now_ns();
        loop_gap = loop_gap.max(now - prev);
        prev = now;
        if now < end {
            let due = (now / interval + 1).saturating_sub(p.sent);
            let n = due.min(32).min(p.tx_room() as u64);
            for _ in 0..n {
                p.queue_frame(now);
            }
            if n > 0 {
                p.send();
            }
        }
        got.clear();
        p.receive(&mut got);
        if !got.is_empty() {
            let t = p.now_ns();
            for &(seq, ts) in &got {
                lat.push(t - ts);
                received += 1;
                lost += seq.saturating_sub(next_seq);
                next_seq = seq + 1;
            }
            if let Some(l) = last_arrival {
                let gap = t - l;
                if worst.len() < 5 || gap > worst[worst.len() - 1].0 {
                    worst.push((gap, t));
                    worst.sort_unstable_by_key(|w| std::cmp::Reverse(w.0));
                    worst.truncate(5);
                }
            }
            last_arrival = Some(t);
        }
        p.reclaim();
    }
    lost += p.sent.saturating_sub(next_seq);
    lat.sort_unstable();
    println!(
        "mode=gaps ring={}",
        if p.packed { "packed" } else { "split" }
    );
    println!(
        "sent={} received={received} lost={lost} pps={} secs={} max_gap_us={} p50_latency_us={} p999_latency_us={} max_latency_us={} probe_max_loop_gap_us={}",
        p.sent,
        a.pps,
        a.secs,
        us(worst.first().map_or(0, |w| w.0)),
        us(quantile(&lat, 0.5)),
        us(quantile(&lat, 0.999)),
        us(lat.last().copied().unwrap_or(0)),
        us(loop_gap),
    );
    let list: Vec<String> = worst
        .iter()
        .map(|(g, t)| format!("{}us@{}ms", us(*g), t / 1_000_000))
        .collect();
    println!("worst_gaps={}", list.join(","));
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vhost_probe: {e}");
            std::process::exit(2);
        }
    };
    match a.mode.as_str() {
        "wakeup" => wakeup(&a),
        "floor" => floor(&a),
        "c2c" => c2c(&a),
        _ => gaps(&a),
    }
}
