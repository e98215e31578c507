//! `vswitchd`'s life cycle: parse flags, load and validate the config, start the switch,
//! wait for SIGTERM or SIGINT, stop cleanly.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;
use switch::{Config, Switch};
use tracing::{info, warn};

/// Command-line flags of `vswitchd`.
#[derive(Debug, Parser)]
#[command(
    name = "vswitchd",
    version,
    about = "vswitch: a userspace poll-mode virtual switch"
)]
pub struct Args {
    /// The TOML config file to start from.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Check the config file and exit without starting the switch.
    #[arg(long)]
    pub check: bool,
}

/// Runs the daemon until SIGTERM/SIGINT. Errors name what was wrong; nothing is left running.
pub fn run(args: Args) -> anyhow::Result<()> {
    // Block the stop signals in this thread before any other thread starts, so every thread
    // inherits the mask and only `sigwait` below receives them.
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGTERM);
    stop.add(Signal::SIGINT);
    stop.thread_block().context("blocking SIGTERM/SIGINT")?;

    let cfg = Config::load(&args.config)?;
    if args.check {
        println!("{}: OK", args.config.display());
        return Ok(());
    }
    keep_off_pmd_cores(&cfg.switch.pmd_cores);
    let sw = Switch::start(&cfg).context("starting the switch")?;
    info!(
        config = %args.config.display(),
        ports = cfg.ports.len(),
        flows = cfg.flows.len(),
        pmds = cfg.switch.pmd_cores.len(),
        "vswitchd running"
    );
    let sig = stop.wait().context("waiting for a stop signal")?;
    info!(signal = ?sig, "stopping");
    // Settle the counters, then leave the totals in the log: what moved and what was dropped.
    let _ = sw.barrier();
    log_totals(&sw);
    sw.shutdown();
    info!("stopped");
    Ok(())
}

/// Restricts this thread, and so every thread it starts from now on (vhost-user connection
/// threads, later the API), to the online CPUs that run no PMD. Each PMD thread then pins
/// itself to its own core. With no CPU left over, nothing changes.
fn keep_off_pmd_cores(pmd_cores: &[usize]) {
    let mut set = CpuSet::new();
    let mut any = false;
    for cpu in switch::config::online_cpus() {
        if !pmd_cores.contains(&cpu) && set.set(cpu).is_ok() {
            any = true;
        }
    }
    if !any {
        warn!("every CPU runs a PMD: control threads share them");
        return;
    }
    if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
        warn!("could not keep control threads off the PMD cores: {e}");
    }
}

/// Logs each port's and each drop reason's totals over all PMDs.
fn log_totals(sw: &Switch) {
    let stats = sw.stats();
    for port in sw.ports() {
        let mut total = switch::stats::PortCounters::default();
        for s in &stats {
            if let Some(c) = s.stats.ports.get(port.no.index()) {
                total.add(c);
            }
        }
        info!(
            port = %port.config.name,
            rx_packets = total.rx_packets,
            tx_packets = total.tx_packets,
            tx_dropped = total.tx_dropped,
            "port totals"
        );
    }
    for why in switch::DropReason::ALL {
        let n: u64 = stats.iter().map(|s| s.stats.drops_of(why)).sum();
        info!(reason = why.as_str(), packets = n, "drop totals");
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
