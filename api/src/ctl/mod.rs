//! `vswitchctl`: the REST API's command-line client. Commands map to one request each; the
//! answer is shown as a table (or key/value lines), or as the API's JSON with `--json`.

pub mod http;
pub mod table;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use http::Endpoint;

/// What to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// `port list`.
    PortList,
    /// `port show NAME`.
    PortShow(String),
    /// `port add NAME TYPE [key=value...]`.
    PortAdd(Value),
    /// `port del NAME`.
    PortDel(String),
    /// `flow dump`.
    FlowDump,
    /// `flow add`: one flow.
    FlowAdd(Value),
    /// `flow add --file`: many flows, all or nothing.
    FlowAddBulk(Value),
    /// `flow del ID`.
    FlowDel(u64),
    /// `flow del --match`.
    FlowDelMatch(Value),
    /// `flow del --all`.
    FlowDelAll,
    /// `fdb show [--vlan N | --vni N]`.
    FdbShow(Option<String>),
    /// `fdb flush`.
    FdbFlush,
    /// `stats`.
    Stats,
    /// `trace`.
    Trace(Value),
}

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where.
    pub endpoint: Endpoint,
    /// The token file (read only for calls that need it).
    pub token_file: Option<PathBuf>,
}

/// A failed command: the message to print.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CtlError(pub String);

/// Parses `k=v,k=v` (or `any`/empty) into a match map.
pub fn parse_match(text: &str) -> Result<BTreeMap<String, String>, CtlError> {
    let mut m = BTreeMap::new();
    let text = text.trim();
    if text.is_empty() || text == "any" {
        return Ok(m);
    }
    for part in text.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| CtlError(format!("{part:?}: match fields are field=value")))?;
        m.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(m)
}

/// Parses `key=value` port options into JSON (numbers stay numbers).
pub fn port_json(name: &str, kind: &str, opts: &[String]) -> Result<Value, CtlError> {
    let mut obj = serde_json::Map::new();
    obj.insert("name".into(), json!(name));
    obj.insert("type".into(), json!(kind));
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| CtlError(format!("{o:?}: port options are key=value")))?;
        let value = match v.parse::<u64>() {
            Ok(n) => json!(n),
            Err(_) => json!(v),
        };
        obj.insert(k.to_string(), value);
    }
    Ok(Value::Object(obj))
}

impl Target {
    fn token(&self) -> Result<Option<String>, CtlError> {
        let candidates: Vec<PathBuf> = match &self.token_file {
            Some(p) => vec![p.clone()],
            None => vec![
                PathBuf::from(crate::token::DEFAULT_STATE_DIR).join(crate::token::TOKEN_FILE),
                PathBuf::from(crate::token::RUN_TOKEN_FILE),
            ],
        };
        for p in &candidates {
            match crate::token::read(p) {
                Ok(t) => return Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.token_file.is_none() => {
                }
                Err(e) => return Err(CtlError(format!("token file {}: {e}", p.display()))),
            }
        }
        Ok(None)
    }

    /// Sends a request; a non-2xx answer becomes the API's error message.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CtlError> {
        let token = if method == "GET" { None } else { self.token()? };
        let body = body.map(Value::to_string);
        let r = self
            .endpoint
            .request(method, path, token.as_deref(), body.as_deref())
            .map_err(|e| CtlError(e.to_string()))?;
        let value: Value = if r.body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&r.body).unwrap_or(Value::String(r.body.clone()))
        };
        if (200..300).contains(&r.status) {
            return Ok(value);
        }
        let msg = value
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| r.body.clone(), str::to_string);
        Err(CtlError(match value.get("field").and_then(Value::as_str) {
            Some(f) => format!("{f}: {msg} (HTTP {})", r.status),
            None => format!("{msg} (HTTP {})", r.status),
        }))
    }
}

/// Runs `cmd`; returns the text to print.
pub fn run(t: &Target, cmd: &Command, as_json: bool) -> Result<String, CtlError> {
    let (method, path, body): (&str, String, Option<&Value>) = match cmd {
        Command::PortList => ("GET", "/v1/ports".into(), None),
        Command::PortShow(n) => ("GET", format!("/v1/ports/{n}"), None),
        Command::PortAdd(v) => ("POST", "/v1/ports".into(), Some(v)),
        Command::PortDel(n) => ("DELETE", format!("/v1/ports/{n}"), None),
        Command::FlowDump => ("GET", "/v1/flows".into(), None),
        Command::FlowAdd(v) => ("POST", "/v1/flows".into(), Some(v)),
        Command::FlowAddBulk(v) => ("POST", "/v1/flows/bulk".into(), Some(v)),
        Command::FlowDel(id) => ("DELETE", format!("/v1/flows/{id}"), None),
        Command::FlowDelMatch(v) => ("POST", "/v1/flows/delete".into(), Some(v)),
        Command::FlowDelAll => ("DELETE", "/v1/flows".into(), None),
        Command::FdbShow(q) => (
            "GET",
            format!(
                "/v1/fdb{}",
                q.as_deref().map(|q| format!("?{q}")).unwrap_or_default()
            ),
            None,
        ),
        Command::FdbFlush => ("DELETE", "/v1/fdb".into(), None),
        Command::Stats => ("GET", "/v1/stats".into(), None),
        Command::Trace(v) => ("POST", "/v1/trace".into(), Some(v)),
    };
    let v = t.call(method, &path, body)?;
    if as_json {
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n");
    }
    Ok(match cmd {
        Command::PortList => ports_table(&v),
        Command::PortShow(_) | Command::PortAdd(_) => port_lines(&v),
        Command::FlowDump => flows_table(&v),
        Command::FlowAdd(_) => format!("flow {} added\n", v["id"]),
        Command::FlowAddBulk(_) => format!("flows added: {}\n", join(&v["ids"])),
        Command::FlowDelMatch(_) | Command::FlowDelAll => {
            format!("flows deleted: {}\n", join(&v["deleted"]))
        }
        Command::FdbShow(_) => fdb_table(&v),
        Command::Stats => stats_text(&v),
        Command::Trace(_) => trace_text(&v),
        Command::PortDel(_) | Command::FlowDel(_) | Command::FdbFlush => String::new(),
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn join(v: &Value) -> String {
    let items: Vec<String> = v.as_array().into_iter().flatten().map(s).collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(",")
    }
}

fn rows(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn ports_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = rows(v)
        .map(|p| {
            let c = &p["counters"];
            vec![
                s(&p["name"]),
                s(&p["config"]["type"]),
                s(&p["port_no"]),
                join(&p["rxq_pmds"]),
                connected(&p["connected"]),
                s(&c["rx_packets"]),
                s(&c["tx_packets"]),
                s(&c["tx_dropped"]),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME",
            "TYPE",
            "NO",
            "RXQ-PMDS",
            "CONNECTED",
            "RX-PKTS",
            "TX-PKTS",
            "TX-DROP",
        ],
        &rows,
    )
}

/// A port's connection state: `yes`, `no`, or `-` for ports without a peer to wait for.
fn connected(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

fn port_lines(p: &Value) -> String {
    let mut out = format!("port {} (no {})\n", s(&p["name"]), s(&p["port_no"]));
    if let Some(cfg) = p["config"].as_object() {
        for (k, v) in cfg {
            if k != "name" {
                out.push_str(&format!("  {k}: {}\n", s(v)));
            }
        }
    }
    out.push_str(&format!("  rxq pmds: {}\n", join(&p["rxq_pmds"])));
    out.push_str(&format!("  connected: {}\n", connected(&p["connected"])));
    if let Some(c) = p["counters"].as_object() {
        for (k, v) in c {
            out.push_str(&format!("  {k}: {}\n", s(v)));
        }
    }
    out
}

fn match_text(m: &Value) -> String {
    let fields: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    if fields.is_empty() {
        "any".into()
    } else {
        fields.join(",")
    }
}

fn flows_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = rows(v)
        .map(|f| {
            vec![
                s(&f["id"]),
                s(&f["priority"]),
                s(&f["hits"]),
                match_text(&f["match"]),
                join(&f["actions"]),
            ]
        })
        .collect();
    table::render(&["ID", "PRIO", "HITS", "MATCH", "ACTIONS"], &rows)
}

fn fdb_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = rows(v)
        .map(|e| {
            vec![
                s(&e["domain"]),
                s(&e["mac"]),
                s(&e["port"]),
                s(&e["age_secs"]),
            ]
        })
        .collect();
    table::render(&["DOMAIN", "MAC", "PORT", "AGE"], &rows)
}

fn stats_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = rows(&v["pmds"])
        .map(|p| {
            let rxqs: Vec<String> = rows(&p["rxqs"])
                .map(|q| format!("{}/{}", s(&q["port"]), s(&q["queue"])))
                .collect();
            vec![
                s(&p["pmd"]),
                s(&p["core"]),
                format!("{:.1}%", p["busy_ratio"].as_f64().unwrap_or(0.0) * 100.0),
                s(&p["rx_packets"]),
                s(&p["port"]["hits"]),
                s(&p["emc"]["hits"]),
                s(&p["emc"]["misses"]),
                s(&p["classifier"]["hits"]),
                s(&p["classifier"]["misses"]),
                s(&p["classifier"]["subtables"]),
                if rxqs.is_empty() {
                    "-".into()
                } else {
                    rxqs.join(",")
                },
            ]
        })
        .collect();
    let mut out = table::render(
        &[
            "PMD",
            "CORE",
            "BUSY",
            "RX-PKTS",
            "PORT-HIT",
            "EMC-HIT",
            "EMC-MISS",
            "CLS-HIT",
            "CLS-MISS",
            "SUBTABLES",
            "RXQS",
        ],
        &rows,
    );
    let drops: Vec<String> = v["drops"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{k}={}", s(n)))
        .collect();
    out.push_str(&format!("drops: {}\n", drops.join(" ")));
    out
}

fn trace_text(v: &Value) -> String {
    let mut out = format!("key: {}\n", s(&v["key"]));
    out.push_str(&format!("pmd: {}\n", s(&v["pmd"])));
    let emc = match (v["emc"].as_str(), &v["emc_rule"]) {
        (Some("hit"), Value::Null) => "hit (cached: no rule, normal)".to_string(),
        (Some("hit"), r) => format!("hit (cached: flow {})", s(r)),
        (e, _) => e.unwrap_or("?").to_string(),
    };
    if v["port_decided"].as_bool() == Some(true) {
        out.push_str("port: every frame of the in-port takes one decision (cache skipped)\n");
    }
    out.push_str(&format!("emc: {emc}\n"));
    let rule = match &v["rule"] {
        Value::Null => "no match (normal)".to_string(),
        r => format!("flow {} (priority {})", s(&r["id"]), s(&r["priority"])),
    };
    out.push_str(&format!("classifier: {rule}\n"));
    out.push_str(&format!("actions: {}\n", join(&v["actions"])));
    if let Some(n) = v["normal"].as_object() {
        if let Some(p) = n.get("learned") {
            out.push_str(&format!(
                "normal: {} learned on {}\n",
                s(&v["domain"]),
                s(p)
            ));
        } else if let Some(ps) = n.get("flood") {
            out.push_str(&format!(
                "normal: flood in {} to {}\n",
                s(&v["domain"]),
                join(ps)
            ));
        } else if let Some(p) = n.get("split_horizon") {
            out.push_str(&format!(
                "normal: {} learned on {}, dropped (split horizon: the frame came from a \
                 vxlan port)\n",
                s(&v["domain"]),
                s(p)
            ));
        }
    }
    out
}
