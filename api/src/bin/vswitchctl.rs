//! `vswitchctl`: drive a running vswitchd over its REST API (TCP or unix socket).

use std::path::PathBuf;

use api::ctl::http::Endpoint;
use api::ctl::{self, Command, CtlError, Target};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

/// Command-line client of vswitchd's REST API.
#[derive(Debug, Parser)]
#[command(name = "vswitchctl", version, about)]
struct Cli {
    /// API address (host:port).
    #[arg(long, global = true, value_name = "ADDR", default_value = api::server::DEFAULT_LISTEN)]
    server: String,
    /// Talk over this unix socket instead of TCP.
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Token file for changes (default: /var/lib/vswitch/api-token, else /run/vswitch/api-token).
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Ports.
    #[command(subcommand)]
    Port(PortCmd),
    /// Flow rules.
    #[command(subcommand)]
    Flow(FlowCmd),
    /// Learned MACs.
    #[command(subcommand)]
    Fdb(FdbCmd),
    /// Datapath statistics per PMD.
    Stats,
    /// What the datapath would do with a frame: `trace IN_PORT field=value,...` or `--hex`.
    Trace {
        /// The port the frame arrives on.
        in_port: String,
        /// Frame fields, e.g. `eth_dst=02:00:00:00:00:02,ip_dst=198.18.0.2,ip_proto=udp`.
        fields: Option<String>,
        /// The whole frame as hex.
        #[arg(long, conflicts_with = "fields")]
        hex: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PortCmd {
    /// List ports with counters.
    List,
    /// One port's config, queues and counters.
    Show { name: String },
    /// Add a port: `port add vm1 vhost-user socket=/run/vswitch/vm1.sock queues=2`.
    Add {
        name: String,
        /// memory, vhost-user, ...
        #[arg(value_name = "TYPE")]
        kind: String,
        /// key=value options of the port type.
        options: Vec<String>,
    },
    /// Delete a port.
    Del { name: String },
}

#[derive(Debug, Subcommand)]
enum FlowCmd {
    /// List flows with hit counters.
    Dump,
    /// Add a flow: `flow add --priority 100 in_port=vm1,eth_type=0x0800 output:vm2`, or many
    /// at once (all or nothing) from a JSON file of flows with `--file`.
    Add {
        /// Priority (0..=65535).
        #[arg(long)]
        priority: Option<u32>,
        /// A JSON file holding an array of flows.
        #[arg(long, conflicts_with_all = ["matches", "actions"])]
        file: Option<PathBuf>,
        /// field=value,... or `any`.
        #[arg(value_name = "MATCH", required_unless_present = "file")]
        matches: Option<String>,
        /// Actions, one per argument.
        #[arg(value_name = "ACTION", required_unless_present = "file")]
        actions: Vec<String>,
    },
    /// Delete a flow by id, flows by match (`--match`), or all (`--all`).
    Del {
        /// The flow id.
        #[arg(required_unless_present_any = ["matches", "all"])]
        id: Option<u64>,
        /// Delete the flows with exactly this match.
        #[arg(long = "match", value_name = "MATCH", conflicts_with = "id")]
        matches: Option<String>,
        /// With --match: only flows of this priority.
        #[arg(long, requires = "matches")]
        priority: Option<u32>,
        /// Delete every flow.
        #[arg(long, conflicts_with_all = ["id", "matches"])]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum FdbCmd {
    /// Learned MACs, optionally of one VLAN or of the VLAN a VNI is bridged into.
    Show {
        /// Only this VLAN (0: untagged).
        #[arg(long)]
        vlan: Option<u16>,
        /// Only the local VLAN the vxlan port with this VNI maps it to.
        #[arg(long, conflicts_with = "vlan")]
        vni: Option<u32>,
    },
    /// Forget every learned MAC.
    Flush,
}

fn command(top: Top) -> Result<Command, CtlError> {
    Ok(match top {
        Top::Port(PortCmd::List) => Command::PortList,
        Top::Port(PortCmd::Show { name }) => Command::PortShow(name),
        Top::Port(PortCmd::Add {
            name,
            kind,
            options,
        }) => Command::PortAdd(ctl::port_json(&name, &kind, &options)?),
        Top::Port(PortCmd::Del { name }) => Command::PortDel(name),
        Top::Flow(FlowCmd::Dump) => Command::FlowDump,
        Top::Flow(FlowCmd::Add {
            priority,
            file: Some(file),
            ..
        }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CtlError(format!("{}: {e}", file.display())))?;
            let mut flows: Value = serde_json::from_str(&text)
                .map_err(|e| CtlError(format!("{}: {e}", file.display())))?;
            if let (Some(p), Some(list)) = (priority, flows.as_array_mut()) {
                for f in list.iter_mut().filter(|f| f.get("priority").is_none()) {
                    f["priority"] = json!(p);
                }
            }
            Command::FlowAddBulk(json!({ "flows": flows }))
        }
        Top::Flow(FlowCmd::Add {
            priority,
            matches,
            actions,
            ..
        }) => {
            let mut f = json!({
                "match": ctl::parse_match(matches.as_deref().unwrap_or(""))?,
                "actions": actions,
            });
            if let Some(p) = priority {
                f["priority"] = json!(p);
            }
            Command::FlowAdd(f)
        }
        Top::Flow(FlowCmd::Del {
            id,
            matches,
            priority,
            all,
        }) => match (id, matches, all) {
            (_, _, true) => Command::FlowDelAll,
            (_, Some(m), _) => {
                let mut q = json!({ "match": ctl::parse_match(&m)? });
                if let Some(p) = priority {
                    q["priority"] = json!(p);
                }
                Command::FlowDelMatch(q)
            }
            (Some(id), None, false) => Command::FlowDel(id),
            (None, None, false) => {
                return Err(CtlError("flow del: give an id, --match or --all".into()))
            }
        },
        Top::Fdb(FdbCmd::Show { vlan, vni }) => Command::FdbShow(match (vlan, vni) {
            (Some(v), _) => Some(format!("vlan={v}")),
            (_, Some(n)) => Some(format!("vni={n}")),
            _ => None,
        }),
        Top::Fdb(FdbCmd::Flush) => Command::FdbFlush,
        Top::Stats => Command::Stats,
        Top::Trace {
            in_port,
            fields,
            hex,
        } => {
            let mut req = json!({ "in_port": in_port });
            match (hex, fields) {
                (Some(h), _) => req["hex"] = json!(h),
                (None, f) => {
                    let map = ctl::parse_match(f.as_deref().unwrap_or(""))?;
                    let mut obj = serde_json::Map::new();
                    for (k, v) in map {
                        // Numbers for the numeric fields, text for the rest.
                        let numeric = matches!(
                            k.as_str(),
                            "vlan_vid" | "vlan_pcp" | "tp_src" | "tp_dst" | "arp_op"
                        );
                        let value = match v.parse::<u64>() {
                            Ok(n) if numeric => json!(n),
                            _ => json!(v),
                        };
                        obj.insert(k, value);
                    }
                    req["fields"] = Value::Object(obj);
                }
            }
            Command::Trace(req)
        }
    })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let target = Target {
        endpoint: match cli.socket {
            Some(p) => Endpoint::Unix(p),
            None => Endpoint::Tcp(cli.server),
        },
        token_file: cli.token_file,
    };
    let result = command(cli.cmd).and_then(|cmd| ctl::run(&target, &cmd, cli.json));
    match result {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vswitchctl: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
