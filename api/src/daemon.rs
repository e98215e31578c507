//! `vswitchd`'s life cycle: parse flags, load and validate the config, start the switch and
//! the API server, wait for SIGTERM or SIGINT, stop cleanly.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;
use switch::{Config, Switch};

use crate::app::App;
use crate::state::{State, Store};
use tracing::{info, warn};

/// Command-line flags of `vswitchd`.
#[derive(Debug, Parser)]
#[command(
    name = "vswitchd",
    version,
    about = "vswitch: a userspace poll-mode virtual switch"
)]
pub struct Args {
    /// The TOML config file to start from (seeds an empty state dir).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check the config file and exit without starting the switch.
    #[arg(long, requires = "config")]
    pub check: bool,
    /// Directory holding the persisted state (state.json) and, by default, the API token.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// TCP address of the REST API, or `off`.
    #[arg(long, value_name = "ADDR", default_value = crate::server::DEFAULT_LISTEN,
          value_parser = parse_listen)]
    pub api_listen: Listen,
    /// Also serve the REST API on this unix socket.
    #[arg(long, value_name = "PATH")]
    pub api_socket: Option<PathBuf>,
    /// The API token file (created with mode 0600 if missing; default: `api-token` in the
    /// state dir, else /run/vswitch/api-token).
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Connections the API serves at once on each endpoint (TCP, unix socket); one more is
    /// answered 503 and closed.
    #[arg(long, value_name = "N", default_value_t = crate::server::limits::DEFAULT_MAX_CONNECTIONS,
          value_parser = parse_max_connections)]
    pub api_max_connections: usize,
    /// Serve mutating API calls without a token (local development only).
    #[arg(long)]
    pub no_auth: bool,
    /// CPUs for PMD threads, e.g. `1` or `2-3,6`; overrides the config's `switch.pmd_cores`.
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list)]
    pub pmd_cores: Option<CpuList>,
}

/// `--api-listen`: an address, or off.
#[derive(Debug, Clone, Copy)]
pub struct Listen(pub Option<SocketAddr>);

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text == "off" {
        return Ok(Listen(None));
    }
    text.parse()
        .map(|a| Listen(Some(a)))
        .map_err(|_| format!("{text:?} is not an address such as 127.0.0.1:6690 (or `off`)"))
}

/// `--api-max-connections`: 1..=65536.
fn parse_max_connections(text: &str) -> Result<usize, String> {
    text.parse()
        .ok()
        .filter(|n| (1..=65_536).contains(n))
        .ok_or_else(|| format!("{text:?} is not a number of connections in 1..=65536"))
}

/// `--pmd-cores`: a CPU list.
#[derive(Debug, Clone)]
pub struct CpuList(pub Vec<usize>);

/// Parses a CPU list such as `1` or `0-1,4`.
fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    let bad = || format!("{text:?} is not a CPU list such as `1` or `2-3,6`");
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if b < a || b - a > 4096 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(CpuList(cpus))
}

/// Runs the daemon until SIGTERM/SIGINT. Errors name what was wrong; nothing is left running.
pub fn run(args: Args) -> anyhow::Result<()> {
    // Block the stop signals in this thread before any other thread starts, so every thread
    // inherits the mask and only `sigwait` below receives them.
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGTERM);
    stop.add(Signal::SIGINT);
    stop.thread_block().context("blocking SIGTERM/SIGINT")?;

    let file_cfg = match &args.config {
        Some(path) => Some(Config::load(path)?),
        None => None,
    };
    if args.check {
        if let Some(path) = &args.config {
            println!("{}: OK", path.display());
        }
        return Ok(());
    }
    let store = args.state_dir.as_deref().map(Store::open).transpose()?;
    let (state, seeded) = startup_state(store.as_ref(), file_cfg.as_ref(), &args)?;
    let mut cfg = state.to_config();
    if let Some(cores) = &args.pmd_cores {
        cfg.switch.pmd_cores = cores.0.clone();
    }
    cfg.validate().map_err(|p| {
        let from = match (&store, &args.config) {
            (Some(s), _) if !seeded => s.path().display().to_string(),
            (_, Some(c)) => c.display().to_string(),
            _ => "the defaults".to_string(),
        };
        match &args.pmd_cores {
            Some(_) => anyhow::anyhow!("{p} (with --pmd-cores, from {from})"),
            None => anyhow::anyhow!("{from}: {p}"),
        }
    })?;
    let api_on = args.api_listen.0.is_some() || args.api_socket.is_some();
    let token = if !api_on {
        // Nothing to authenticate: no token file is created.
        None
    } else if args.no_auth {
        warn!("--no-auth: mutating API calls need no token");
        None
    } else {
        let path = args
            .api_token_file
            .clone()
            .unwrap_or_else(|| crate::token::default_path(args.state_dir.as_deref()));
        Some(crate::token::load_or_create(&path)?)
    };
    keep_off_pmd_cores(&cfg.switch.pmd_cores);
    let sw = start_switch(&cfg, &state).context("starting the switch")?;
    let app = Arc::new(App::new(sw, store, state.switch.clone(), token));
    if seeded {
        app.persist().context("writing the initial state")?;
    }
    let endpoints = crate::server::Endpoints {
        tcp: args.api_listen.0,
        unix: args.api_socket.clone(),
        max_connections: args.api_max_connections,
    };
    let server = crate::server::Server::start(app.clone(), &endpoints)?;
    info!(
        ports = cfg.ports.len(),
        flows = cfg.flows.len(),
        pmds = cfg.switch.pmd_cores.len(),
        "vswitchd running"
    );
    let sig = stop.wait().context("waiting for a stop signal")?;
    info!(signal = ?sig, "stopping");
    server.stop();
    let sw = &app.switch;
    // Settle the counters, then leave the totals in the log: what moved and what was dropped.
    let _ = sw.barrier();
    log_totals(sw);
    match Arc::try_unwrap(app) {
        Ok(app) => app.switch.shutdown(),
        Err(_) => warn!("API requests still hold the switch; it stops on exit"),
    }
    info!("stopped");
    Ok(())
}

/// The state to start from, and whether it is new (to be written to the state dir). With a
/// state dir holding state, that state wins and a disagreeing config file is reported.
fn startup_state(
    store: Option<&Store>,
    file: Option<&Config>,
    args: &Args,
) -> anyhow::Result<(State, bool)> {
    let Some(store) = store else {
        if args.api_listen.0.is_some() || args.api_socket.is_some() {
            warn!("no --state-dir: API changes are not persisted");
        }
        return Ok((
            State::from_config(&file.cloned().unwrap_or_default()),
            false,
        ));
    };
    match store.load()? {
        Some(state) => {
            info!(file = %store.path().display(), ports = state.ports.len(),
                  flows = state.flows.len(), "restoring state");
            if let (Some(file), Some(path)) = (file, &args.config) {
                let diffs = crate::state::differences(&state.to_config(), file);
                for d in &diffs {
                    warn!(config = %path.display(), state = %store.path().display(),
                          "config file disagrees with the state (the state wins): {d}");
                }
            }
            Ok((state, false))
        }
        None => {
            let cfg = file.cloned().unwrap_or_default();
            info!(dir = %store.dir().display(), "empty state dir: seeding it from {}",
                  args.config.as_ref().map_or("defaults".to_string(), |p| p.display().to_string()));
            Ok((State::from_config(&cfg), true))
        }
    }
}

/// Starts the switch with `cfg`'s settings and ports and `state`'s flows under their ids.
fn start_switch(cfg: &Config, state: &State) -> Result<Switch, switch::SwitchError> {
    let sw = Switch::new(&cfg.switch)?;
    for port in &cfg.ports {
        sw.add_port(port.clone())?;
    }
    let flows: Vec<_> = state
        .flows
        .iter()
        .map(|f| (flowtable::RuleId(f.id), f.config()))
        .collect();
    sw.restore_flows(&flows, state.next_flow_id)?;
    Ok(sw)
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

/// Logs each port's and each drop reason's totals over all PMDs, then the overlay's
/// counters (one line: `tunnel totals: encap_packets=N decap_packets=N ...`, every
/// [`switch::tunnel::stats::TunnelStats`] field, summed).
fn log_totals(sw: &Switch) {
    let stats = sw.stats();
    for port in sw.ports() {
        let total = switch::stats::PortCounters::total(&stats, port.no);
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
    let mut tunnel = switch::tunnel::stats::TunnelStats::default();
    for s in &stats {
        tunnel.add(&s.tunnel);
    }
    let counters: Vec<String> = tunnel
        .fields()
        .iter()
        .map(|(name, _, n)| format!("{name}={n}"))
        .collect();
    info!("tunnel totals: {}", counters.join(" "));
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
