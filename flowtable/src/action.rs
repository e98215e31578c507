//! Actions a rule applies, and their text syntax.
//!
//! One action per list entry (the caller splits the list, e.g. a TOML array):
//! - `output:NAME`: NAME is resolved by the caller's resolver (which may also accept numbers);
//! - `normal`: L2 learning switch;
//! - `drop`: must be the only entry; parses to the empty list;
//! - `push_vlan:VID` or `push_vlan:VID,pcp=P`;
//! - `pop_vlan` (alias `strip_vlan`, as in `ovs-ofctl`);
//! - `set_tunnel:VNI` (decimal or `0x` hex).

use core::fmt;

use crate::matching::parse::{self, Suggestion};
use crate::types::{PortNo, VlanId, Vni};

/// One action. A rule's action list runs in order; an empty list drops the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send the frame (as it is now) out of a port.
    Output(PortNo),
    /// L2 learning switch within the frame's VLAN/VNI.
    Normal,
    /// Push an 802.1Q tag.
    PushVlan {
        /// The tag's VLAN id.
        vid: VlanId,
        /// The tag's priority code point.
        pcp: u8,
    },
    /// Pop the outer 802.1Q tag, if any.
    PopVlan,
    /// Set the tunnel id used by a later output to a VXLAN port.
    SetTunnel(Vni),
}

/// Why an action list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The list has no entries.
    #[error("no actions: use \"drop\" to drop")]
    Empty,
    /// One entry was refused.
    #[error("actions[{index}] {text:?}: {reason}")]
    Invalid {
        /// The entry's position in the list.
        index: usize,
        /// The entry as written.
        text: String,
        /// Why it was refused.
        reason: String,
    },
}

/// The action keywords, for did-you-mean suggestions.
const NAMES: &[&str] = &[
    "output",
    "normal",
    "drop",
    "push_vlan",
    "pop_vlan",
    "set_tunnel",
];

impl Action {
    /// Parses one entry: `Ok(None)` is `drop`.
    fn parse_one(
        text: &str,
        resolve: &dyn Fn(&str) -> Option<PortNo>,
    ) -> Result<Option<Action>, String> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (text, None),
        };
        let no_arg = |a: Action| match arg {
            None => Ok(Some(a)),
            Some(_) => Err(format!("{name:?} takes no argument")),
        };
        let need = |usage: &str| match arg {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(format!("expected {usage}")),
        };
        match name {
            "output" => {
                let port = need("output:PORT")?;
                match resolve(port) {
                    Some(p) => Ok(Some(Action::Output(p))),
                    None => Err(format!("no port named {port:?}")),
                }
            }
            "normal" => no_arg(Action::Normal),
            "pop_vlan" | "strip_vlan" => no_arg(Action::PopVlan),
            "drop" => match arg {
                None => Ok(None),
                Some(_) => Err("\"drop\" takes no argument".to_string()),
            },
            "push_vlan" => {
                const USAGE: &str = "push_vlan:VID or push_vlan:VID,pcp=P";
                let a = need(USAGE)?;
                let (vid, pcp) = match a.split_once(',') {
                    None => (a, None),
                    Some((vid, rest)) => match rest.trim().strip_prefix("pcp=") {
                        Some(p) => (vid.trim(), Some(p.trim())),
                        None => return Err(format!("expected {USAGE}")),
                    },
                };
                let vid = parse::number(vid, VlanId::MAX as u64, "VLAN id")?;
                let pcp = match pcp {
                    Some(p) => parse::number(p, 7, "pcp")? as u8,
                    None => 0,
                };
                let vid = VlanId::new(vid as u16).ok_or("VLAN id must be 0..=4095")?;
                Ok(Some(Action::PushVlan { vid, pcp }))
            }
            "set_tunnel" => {
                let a = need("set_tunnel:VNI")?;
                let vni = parse::number(a, Vni::MAX as u64, "VNI")?;
                let vni = Vni::new(vni as u32).ok_or("VNI must be 0..=16777215")?;
                Ok(Some(Action::SetTunnel(vni)))
            }
            _ => Err(format!(
                "unknown action {name:?}{}",
                Suggestion(parse::did_you_mean(name, NAMES.iter().copied()))
            )),
        }
    }

    /// The text form, with output ports named by `name_of` (falling back to the number).
    pub fn display_with(&self, name_of: &dyn Fn(PortNo) -> Option<String>) -> String {
        match *self {
            Action::Output(p) => match name_of(p) {
                Some(name) => format!("output:{name}"),
                None => format!("output:{p}"),
            },
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Action {
    /// The text form, with output ports as numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Action::Output(p) => write!(f, "output:{p}"),
            Action::Normal => f.write_str("normal"),
            Action::PushVlan { vid, pcp: 0 } => write!(f, "push_vlan:{vid}"),
            Action::PushVlan { vid, pcp } => write!(f, "push_vlan:{vid},pcp={pcp}"),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::SetTunnel(vni) => write!(f, "set_tunnel:{vni}"),
        }
    }
}

/// Parses an action list, one action per entry. `resolve` maps an `output:` argument to a
/// port (port names, and numbers if the caller accepts them). `["drop"]` parses to the empty
/// list; `drop` cannot be combined with other actions, and an empty list is refused.
pub fn parse_actions<S: AsRef<str>>(
    list: &[S],
    resolve: &dyn Fn(&str) -> Option<PortNo>,
) -> Result<Vec<Action>, ActionError> {
    if list.is_empty() {
        return Err(ActionError::Empty);
    }
    let mut out = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let text = entry.as_ref();
        let err = |reason: String| ActionError::Invalid {
            index,
            text: text.to_string(),
            reason,
        };
        match Action::parse_one(text.trim(), resolve).map_err(err)? {
            Some(a) => out.push(a),
            None if list.len() == 1 => {}
            None => return Err(err("\"drop\" must be the only action".to_string())),
        }
    }
    Ok(out)
}

/// Renders an action list back to its text form (`["drop"]` for the empty list).
pub fn format_actions(
    actions: &[Action],
    name_of: &dyn Fn(PortNo) -> Option<String>,
) -> Vec<String> {
    if actions.is_empty() {
        return vec!["drop".to_string()];
    }
    actions.iter().map(|a| a.display_with(name_of)).collect()
}

#[cfg(test)]
mod test {
    use super::*;

    fn resolve(name: &str) -> Option<PortNo> {
        match name {
            "vm1" => Some(PortNo(1)),
            "vm2" => Some(PortNo(2)),
            "uplink" => Some(PortNo(7)),
            _ => name.parse().ok().map(PortNo),
        }
    }

    fn name_of(p: PortNo) -> Option<String> {
        match p.0 {
            1 => Some("vm1".into()),
            2 => Some("vm2".into()),
            _ => None,
        }
    }

    fn parse(list: &[&str]) -> Result<Vec<Action>, ActionError> {
        parse_actions(list, &resolve)
    }

    fn err(list: &[&str]) -> String {
        parse(list).unwrap_err().to_string()
    }

    #[test]
    fn parses_each_syntax() {
        let vid = |v| VlanId::new(v).unwrap();
        assert_eq!(
            parse(&["output:vm1", "output:3", "normal"]).unwrap(),
            vec![
                Action::Output(PortNo(1)),
                Action::Output(PortNo(3)),
                Action::Normal
            ]
        );
        assert_eq!(parse(&["drop"]).unwrap(), vec![]);
        assert_eq!(parse(&[" drop "]).unwrap(), vec![]);
        assert_eq!(
            parse(&[
                "push_vlan:100",
                "push_vlan:4095,pcp=7",
                "push_vlan:0x10, pcp=3"
            ])
            .unwrap(),
            vec![
                Action::PushVlan {
                    vid: vid(100),
                    pcp: 0
                },
                Action::PushVlan {
                    vid: vid(4095),
                    pcp: 7
                },
                Action::PushVlan {
                    vid: vid(16),
                    pcp: 3
                },
            ]
        );
        assert_eq!(
            parse(&["pop_vlan", "strip_vlan"]).unwrap(),
            vec![Action::PopVlan; 2]
        );
        assert_eq!(
            parse(&["set_tunnel:5000", "set_tunnel:0xffffff"]).unwrap(),
            vec![
                Action::SetTunnel(Vni::new(5000).unwrap()),
                Action::SetTunnel(Vni::new(0xff_ffff).unwrap())
            ]
        );
    }

    #[test]
    fn resolution_is_left_to_the_resolver() {
        let names_only = |n: &str| (n == "vm1").then_some(PortNo(1));
        assert_eq!(
            parse_actions(&["output:1"], &names_only)
                .unwrap_err()
                .to_string(),
            "actions[0] \"output:1\": no port named \"1\""
        );
        assert_eq!(
            parse_actions(&["output:vm1"], &names_only).unwrap(),
            vec![Action::Output(PortNo(1))]
        );
        // Owned strings work too.
        let owned = vec!["normal".to_string()];
        assert_eq!(
            parse_actions(&owned, &names_only).unwrap(),
            vec![Action::Normal]
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(err(&[]), "no actions: use \"drop\" to drop");
        assert_eq!(
            err(&["normal", "output:vm9"]),
            "actions[1] \"output:vm9\": no port named \"vm9\""
        );
        assert_eq!(
            err(&["outptu"]),
            "actions[0] \"outptu\": unknown action \"outptu\" (did you mean \"output\"?)"
        );
        assert_eq!(
            err(&["flood"]),
            "actions[0] \"flood\": unknown action \"flood\""
        );
        assert_eq!(
            err(&["normal", "drop"]),
            "actions[1] \"drop\": \"drop\" must be the only action"
        );
        assert_eq!(
            err(&["drop", "drop"]),
            "actions[0] \"drop\": \"drop\" must be the only action"
        );
        assert_eq!(
            err(&["output"]),
            "actions[0] \"output\": expected output:PORT"
        );
        assert_eq!(
            err(&["output:"]),
            "actions[0] \"output:\": expected output:PORT"
        );
        assert_eq!(
            err(&["normal:1"]),
            "actions[0] \"normal:1\": \"normal\" takes no argument"
        );
        assert_eq!(
            err(&["drop:1"]),
            "actions[0] \"drop:1\": \"drop\" takes no argument"
        );
        assert_eq!(
            err(&["push_vlan:5000"]),
            "actions[0] \"push_vlan:5000\": VLAN id must be 0..=4095"
        );
        assert_eq!(
            err(&["push_vlan:5,pcp=8"]),
            "actions[0] \"push_vlan:5,pcp=8\": pcp must be 0..=7"
        );
        assert_eq!(
            err(&["push_vlan:5,prio=1"]),
            "actions[0] \"push_vlan:5,prio=1\": expected push_vlan:VID or push_vlan:VID,pcp=P"
        );
        assert_eq!(
            err(&["push_vlan:x"]),
            "actions[0] \"push_vlan:x\": expected a decimal or 0x-prefixed hex number"
        );
        assert_eq!(
            err(&["set_tunnel:0x1000000"]),
            "actions[0] \"set_tunnel:0x1000000\": VNI must be 0..=16777215"
        );
        assert_eq!(
            err(&["set_tunnel"]),
            "actions[0] \"set_tunnel\": expected set_tunnel:VNI"
        );
    }

    #[test]
    fn renders_back() {
        let list = parse(&[
            "push_vlan:10,pcp=5",
            "push_vlan:11",
            "output:vm2",
            "output:7",
            "pop_vlan",
            "set_tunnel:0x10",
            "normal",
        ])
        .unwrap();
        let text = format_actions(&list, &name_of);
        assert_eq!(
            text,
            [
                "push_vlan:10,pcp=5",
                "push_vlan:11",
                "output:vm2",
                "output:7",
                "pop_vlan",
                "set_tunnel:16",
                "normal"
            ]
        );
        assert_eq!(parse_actions(&text, &resolve).unwrap(), list);
        assert_eq!(format_actions(&[], &name_of), ["drop"]);
        assert_eq!(Action::Output(PortNo(2)).to_string(), "output:2");
    }
}
