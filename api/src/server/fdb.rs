//! `/v1/fdb`: learned MACs (all, or one VLAN's, or the local VLAN a VNI is bridged into), and
//! flushing them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use switch::config::{PortType, VlanMode};
use switch::PortInfo;

use super::routes::blocking;
use crate::app::App;
use crate::error::{ApiError, ErrorBody};

/// A learned MAC.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FdbView {
    /// `untagged`, `vlan N` or `vni N`.
    pub domain: String,
    /// The VLAN, for a VLAN domain.
    pub vlan: Option<u16>,
    /// The VNI, for a VXLAN domain.
    pub vni: Option<u32>,
    /// The address.
    pub mac: String,
    /// The port it was last seen on.
    pub port: String,
    /// Seconds since it was last seen.
    pub age_secs: u64,
}

/// Learned MACs; `?vlan=N` selects one VLAN (`?vlan=0`: untagged); `?vni=N` the local VLAN(s)
/// the vxlan port(s) with VNI N bridge it into (learning is per local VLAN; 404 when no
/// vxlan port carries N); both: the entries both select.
#[utoipa::path(get, path = "/v1/fdb", operation_id = "list_fdb", tag = "fdb",
    params(("vlan" = Option<u16>, Query, minimum = 0, maximum = 4095,
            description = "only this VLAN (0: untagged)"),
        ("vni" = Option<u32>, Query, minimum = 0, maximum = 16777215,
            description = "only the local VLAN the vxlan port with this VNI maps it to \
                (with `vlan`: the entries both select)")),
    responses((status = 200, body = [FdbView]), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list(
    State(app): State<Arc<App>>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<FdbView>>, ApiError> {
    let (mut vlan, mut vni) = (None, None);
    for pair in q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let num = |max: u32| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| ApiError::bad(k, format!("{v:?} is not a number in 0..={max}")))
        };
        match k {
            "vlan" => vlan = Some(num(4095)? as u16),
            "vni" => vni = Some(num((1 << 24) - 1)?),
            _ => return Err(ApiError::bad(k, "unknown parameter (expected vlan or vni)")),
        }
    }
    let (entries, names, vni_vlans) = blocking(&app, move |app| {
        let ports = app.switch.ports();
        let vni_vlans = match vni {
            Some(want) => {
                let vlans = vni_domains(&ports, want);
                if vlans.is_empty() {
                    return Err(ApiError::not_found(
                        "vni",
                        format!("no vxlan port carries VNI {want}"),
                    ));
                }
                vlans
            }
            None => BTreeSet::new(),
        };
        let names: HashMap<u32, String> =
            ports.into_iter().map(|p| (p.no.0, p.config.name)).collect();
        Ok((app.switch.fdb()?, names, vni_vlans))
    })
    .await?;
    let out = entries
        .into_iter()
        .filter_map(|e| {
            let v = e.domain.as_vlan().map(|v| v.get());
            let n = e.domain.as_vni().map(|n| n.get());
            let by_vlan = match vlan {
                Some(0) => v.is_none() && n.is_none(),
                Some(want) => v == Some(want),
                None => true,
            };
            let by_vni = match vni {
                Some(want) => n == Some(want) || (n.is_none() && vni_vlans.contains(&v)),
                None => true,
            };
            let keep = by_vlan && by_vni;
            keep.then(|| FdbView {
                domain: e.domain.to_string(),
                vlan: v,
                vni: n,
                mac: e.mac.to_string(),
                port: names
                    .get(&e.port.0)
                    .cloned()
                    .unwrap_or_else(|| e.port.to_string()),
                age_secs: e.age_secs,
            })
        })
        .collect();
    Ok(Json(out))
}

/// The local VLANs (`None`: untagged) that VNI `vni` is bridged into: MACs are learned per
/// local VLAN, and a vxlan port's VLAN setting maps its VNI to one (access `tag`), or, for
/// a trunk, to its `native` and `allowed` VLANs; without a setting, the untagged domain.
/// Empty when no vxlan port carries the VNI.
fn vni_domains(ports: &[PortInfo], vni: u32) -> BTreeSet<Option<u16>> {
    let mut vlans = BTreeSet::new();
    for p in ports {
        let c = &p.config;
        if c.kind != PortType::Vxlan || c.vni != Some(vni) {
            continue;
        }
        match &c.vlan {
            None => {
                vlans.insert(None);
            }
            Some(v) => match v.mode {
                VlanMode::Access => vlans.extend(v.tag.map(Some)),
                VlanMode::Trunk => {
                    vlans.extend(v.native.map(Some));
                    vlans.extend(v.allowed.iter().flatten().map(|&a| Some(a)));
                }
            },
        }
    }
    vlans
}

/// Forgets every learned MAC.
#[utoipa::path(delete, path = "/v1/fdb", operation_id = "flush_fdb", tag = "fdb",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn flush(State(app): State<Arc<App>>) -> Result<StatusCode, ApiError> {
    blocking(&app, |app| Ok(app.switch.flush_fdb()?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
