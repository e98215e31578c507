//! `/v1/ports`: list, create, show, delete.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use flowtable::action::Action;
use flowtable::PortNo;
use serde::Serialize;
use switch::config::PortConfig;
use switch::stats::PortCounters;
use switch::{PortInfo, Switch};
use tracing::warn;

use super::json::{Body, PathParam};
use super::routes::blocking;
use crate::app::{App, Undo};
use crate::error::{ApiError, ErrorBody};

/// A port: its config, where its queues are polled, and its counters over all PMDs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortView {
    /// The port's name.
    pub name: String,
    /// Its config, as in the config file's `[[port]]`.
    #[schema(value_type = super::schema::PortConfig)]
    pub config: PortConfig,
    /// Datapath port number.
    pub port_no: u32,
    /// For each rx queue, the PMD polling it.
    pub rxq_pmds: Vec<usize>,
    /// For ports with a peer to wait for (vhost-user): whether it is attached now (a
    /// frontend connected, its rings set up). Null for ports without one (memory).
    pub connected: Option<bool>,
    /// For ports whose peer is a tenant (vhost-user): what it did wrong, each fault costing
    /// this port only. Null for the others.
    pub guest_faults: Option<GuestFaultsView>,
    /// Counters summed over the PMDs.
    pub counters: Counters,
}

/// A tenant's faults on its port since the port was created.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct GuestFaultsView {
    /// Rings that broke on a driver fault or were refused at start.
    pub rings_broken: u64,
    /// Of those, rings stopped because the guest's memory was truncated under the switch.
    pub memory_faults: u64,
    /// Descriptor chains returned unused: over 256 descriptors (per chain or mergeable frame).
    pub chains_over_cap: u64,
    /// Interrupts not delivered (call eventfd full, or made blocking).
    pub interrupts_lost: u64,
    /// Protocol messages refused.
    pub refused_messages: u64,
    /// A frontend's call eventfd blocked a PMD: the port signals no frontend any more.
    pub interrupts_muted: bool,
}

impl From<switch::GuestFaults> for GuestFaultsView {
    fn from(f: switch::GuestFaults) -> GuestFaultsView {
        GuestFaultsView {
            rings_broken: f.rings_broken,
            memory_faults: f.memory_faults,
            chains_over_cap: f.chains_over_cap,
            interrupts_lost: f.interrupts_lost,
            refused_messages: f.refused_messages,
            interrupts_muted: f.interrupts_muted,
        }
    }
}

/// A port's counters.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Counters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames the port's tx queue refused.
    pub tx_dropped: u64,
    /// Frames received with a guest offload request (partial checksum, TSO) that checked out.
    pub rx_offload: u64,
    /// Frames received whose virtio-net header lied about them (dropped).
    pub rx_offload_bad: u64,
    /// Frames sent with their offload request kept (to a guest that negotiated it).
    pub tx_offload: u64,
    /// Segments made in software for this port.
    pub tx_segments: u64,
    /// Partial checksums filled in software for this port.
    pub tx_csum_filled: u64,
}

fn view(app: &App, p: PortInfo) -> PortView {
    let connected = app
        .switch
        .port_connections()
        .into_iter()
        .find(|&(no, _)| no == p.no)
        .and_then(|(_, c)| c);
    let guest_faults = app
        .switch
        .port_faults()
        .into_iter()
        .find(|&(no, _)| no == p.no)
        .and_then(|(_, f)| f)
        .map(GuestFaultsView::from);
    let total = PortCounters::total(&app.switch.stats(), p.no);
    PortView {
        name: p.config.name.clone(),
        port_no: p.no.0,
        rxq_pmds: p.rxq_pmds,
        connected,
        guest_faults,
        config: p.config,
        counters: Counters {
            rx_packets: total.rx_packets,
            rx_bytes: total.rx_bytes,
            tx_packets: total.tx_packets,
            tx_bytes: total.tx_bytes,
            tx_dropped: total.tx_dropped,
            rx_offload: total.rx_offload,
            rx_offload_bad: total.rx_offload_bad,
            tx_offload: total.tx_offload,
            tx_segments: total.tx_segments,
            tx_csum_filled: total.tx_csum_filled,
        },
    }
}

fn find(app: &App, name: &str) -> Result<PortInfo, ApiError> {
    app.switch
        .ports()
        .into_iter()
        .find(|p| p.config.name == name)
        .ok_or_else(|| ApiError::not_found("name", format!("no port named {name:?}")))
}

/// All ports, in creation order.
#[utoipa::path(get, path = "/v1/ports", operation_id = "list_ports", tag = "ports",
    responses((status = 200, body = [PortView])))]
pub async fn list(State(app): State<Arc<App>>) -> Result<Json<Vec<PortView>>, ApiError> {
    let ports = blocking(&app, |app| {
        Ok(app
            .switch
            .ports()
            .into_iter()
            .map(|p| view(app, p))
            .collect())
    })
    .await?;
    Ok(Json(ports))
}

/// Creates a port (body: a `[[port]]` of the config file, as JSON).
#[utoipa::path(post, path = "/v1/ports", operation_id = "create_port", tag = "ports",
    request_body(content = super::schema::PortConfig,
        description = "a [[port]] table of the config file, as JSON"),
    responses((status = 201, body = PortView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody,
            description = "the interface, or the socket's directory, does not exist"),
        (status = 409, body = ErrorBody, description = "a port has the name, or is the \
            underlay, or carries the VNI to that remote; or the interface is in use"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB")))]
pub async fn create(
    State(app): State<Arc<App>>,
    Body(cfg): Body<PortConfig>,
) -> Result<(StatusCode, Json<PortView>), ApiError> {
    let v = blocking(&app, move |app| {
        let name = cfg.name.clone();
        let kind = cfg.kind;
        app.change(|sw| {
            sw.add_port(cfg)
                .map_err(|e| ApiError::from_add_port(e, kind))?;
            Ok(((), Undo::DelPort(name.clone())))
        })?;
        Ok(view(app, find(app, &name)?))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// One port.
#[utoipa::path(get, path = "/v1/ports/{name}", operation_id = "show_port", tag = "ports",
    params(("name" = String, Path, description = "port name")),
    responses((status = 200, body = PortView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(app): State<Arc<App>>,
    PathParam(name): PathParam<String>,
) -> Result<Json<PortView>, ApiError> {
    let v = blocking(&app, move |app| Ok(view(app, find(app, &name)?))).await?;
    Ok(Json(v))
}

/// Deletes a port. Refused (409) while any flow uses it, as `in_port` or an `output`, in any
/// spelling the flow parser accepts (the error names each flow's id and field): delete them
/// first, so the persisted state always restores.
#[utoipa::path(delete, path = "/v1/ports/{name}", operation_id = "delete_port", tag = "ports",
    params(("name" = String, Path, description = "port name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(app): State<Arc<App>>,
    PathParam(name): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    blocking(&app, move |app| {
        app.change_persisted_first(
            |sw, mut state| {
                let port = find(app, &name)?;
                let users = users_of(sw, port.no);
                if !users.is_empty() {
                    let list: Vec<String> = users
                        .iter()
                        .map(|(id, field)| format!("flow {id} ({field})"))
                        .collect();
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        format!(
                            "port {name:?} is used by {}; delete them first",
                            list.join(", ")
                        ),
                        Some("name"),
                    ));
                }
                state.ports.retain(|p| p.name != name);
                Ok(state)
            },
            |sw| Ok(sw.del_port(&name)?),
        )
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The flows that use port `no`, each with the field that names it (`match.in_port`,
/// `actions[i]`), in id order. Every flow is compiled against the current ports with the
/// switch's own parser, so every spelling it accepts counts (`"output :b"`, a numeric
/// `in_port` naming a port called "3"): the decision is made on what the switch runs, not
/// on the text.
fn users_of(sw: &Switch, no: PortNo) -> Vec<(u64, String)> {
    let ports: HashMap<String, PortNo> = sw
        .ports()
        .into_iter()
        .map(|p| (p.config.name, p.no))
        .collect();
    let resolve = |name: &str| ports.get(name).copied();
    let mut users = Vec::new();
    for (id, flow) in sw.flow_configs() {
        let compiled = match flow.compile(&resolve) {
            Ok(c) => c,
            Err(p) => {
                // Cannot happen through the API (flows are compiled when added and ports
                // they use cannot go); such a flow uses no port that exists.
                warn!(flow = id.0, "a flow no longer compiles: {p}");
                continue;
            }
        };
        let m = &compiled.matches;
        if m.mask().in_port_raw() != 0 && m.value().in_port() == no {
            users.push((id.0, "match.in_port".to_string()));
        }
        // `drop` is only ever alone (and compiles to no action), so compiled action `i` is
        // the flow's `actions[i]`.
        for (i, a) in compiled.actions.iter().enumerate() {
            if *a == Action::Output(no) {
                users.push((id.0, format!("actions[{i}]")));
            }
        }
    }
    users
}
