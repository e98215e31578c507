//! `POST /v1/trace`: what the datapath would do with a frame, without forwarding it.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use flowtable::action::format_actions;
use flowtable::matching::Match;
use flowtable::FlowKey;
use serde::{Deserialize, Serialize};
use switch::control::{EmcProbe, NormalOutcome};

use super::json::Body;
use super::limits::TRACE_BODY_LIMIT;
use super::routes::blocking;
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::frame::{self, FrameFields};

/// A frame and its in-port: give `hex` (the whole frame) or `fields` (built for you).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    /// The port the frame arrives on.
    pub in_port: String,
    /// The frame as hex digits (separators `:` and spaces allowed).
    pub hex: Option<String>,
    /// Header fields to build the frame from.
    pub fields: Option<FrameFields>,
}

/// What the frame would meet.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TraceView {
    /// The PMD that traced it (the one polling the in-port's first rx queue).
    pub pmd: usize,
    /// The frame's flow key (fields with non-zero values), `field=value,...`.
    pub key: String,
    /// True when the rules give every frame of the in-port one decision (the datapath then
    /// skips the cache and the classifier: `emc` and `rule` still show what they hold).
    pub port_decided: bool,
    /// `hit` (the cache holds a decision) or `miss` (the classifier decides).
    pub emc: String,
    /// On a cache hit, the rule the cached decision names (null: no rule, `normal`).
    pub emc_rule: Option<u64>,
    /// The rule the classifier picks (null: none matches, the frame takes `normal`).
    pub rule: Option<TracedRule>,
    /// The actions that would run.
    pub actions: Vec<String>,
    /// The L2 domain `normal` works in.
    pub domain: String,
    /// Where `normal` sends it: `{"learned": port}`, `{"flood": [ports]}` or
    /// `{"split_horizon": port}` (learned on that vxlan port, but the frame came from a
    /// vxlan port: dropped); null without `normal`.
    pub normal: Option<NormalView>,
}

/// A matched rule.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TracedRule {
    /// The flow id.
    pub id: u64,
    /// Its priority.
    pub priority: u32,
}

/// `normal`'s choice.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NormalView {
    /// The destination MAC is learned on this port.
    Learned(String),
    /// Unknown destination: flooded to these ports.
    Flood(Vec<String>),
    /// Learned on this vxlan port, but the frame came from a vxlan port: split horizon
    /// drops it.
    #[serde(rename = "split_horizon")]
    SplitHorizon(String),
}

/// Traces a frame through the in-port's PMD: key extraction, exact-match cache, classifier,
/// and `normal`'s MAC table. Nothing is forwarded, learned or counted.
#[utoipa::path(post, path = "/v1/trace", operation_id = "trace", tag = "trace",
    request_body = TraceRequest,
    responses((status = 200, body = TraceView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no port has the `in_port` name"),
        (status = 413, body = ErrorBody, description = "the body is over 384 KiB")))]
pub async fn trace(
    State(app): State<Arc<App>>,
    Body(req): Body<TraceRequest, TRACE_BODY_LIMIT>,
) -> Result<Json<TraceView>, ApiError> {
    // Decoding (up to 196659 hex characters) runs on the blocking pool too.
    let view = blocking(&app, move |app| {
        let frame = match (&req.hex, &req.fields) {
            (Some(h), None) => frame::from_hex(h)?,
            (None, Some(f)) => frame::build(f)?,
            (None, None) => {
                return Err(ApiError::bad("hex", "give the frame as `hex` or `fields`"))
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::bad("fields", "give `hex` or `fields`, not both"))
            }
        };
        let sw = &app.switch;
        let t = sw.trace(&req.in_port, frame).map_err(|e| match e {
            switch::SwitchError::NoSuchPort(n) => {
                ApiError::not_found("in_port", format!("no port named {n:?}"))
            }
            e => e.into(),
        })?;
        let name = |p: flowtable::PortNo| sw.port_name(p).unwrap_or_else(|| p.to_string());
        let (emc, emc_rule) = match t.emc {
            EmcProbe::Miss => ("miss", None),
            EmcProbe::Hit(r) => ("hit", r.map(|r| r.0)),
        };
        Ok(TraceView {
            pmd: t.pmd,
            key: key_text(&t.key, &name(t.key.in_port())),
            port_decided: t.port_decided,
            emc: emc.to_string(),
            emc_rule,
            rule: t
                .rule
                .map(|(id, priority)| TracedRule { id: id.0, priority }),
            actions: format_actions(&t.actions, &|p| sw.port_name(p)),
            domain: t.domain.to_string(),
            normal: t.normal.map(|n| match n {
                NormalOutcome::Learned(p) => NormalView::Learned(name(p)),
                NormalOutcome::Flood(ps) => NormalView::Flood(ps.into_iter().map(name).collect()),
                NormalOutcome::SplitHorizon(p) => NormalView::SplitHorizon(name(p)),
            }),
        })
    })
    .await?;
    Ok(Json(view))
}

/// The key's fields that carry a value (zero fields are left out, `eth_type` always kept),
/// the in-port by name.
fn key_text(key: &FlowKey, in_port: &str) -> String {
    Match::from_parts(*key, FlowKey::EXACT)
        .fields()
        .into_iter()
        .filter(|(f, v)| {
            let zero = v.split('/').next().unwrap_or(v);
            f.to_string() == "eth_type" || !zero.chars().all(|c| matches!(c, '0' | '.' | ':' | 'x'))
        })
        .map(|(f, v)| match f.to_string().as_str() {
            "in_port" => format!("in_port={in_port}"),
            _ => format!("{f}={v}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}
