//! Flow-match text (and action text) from any bytes.
//!
//! Input: the first line is a match (`Match::from_str`), each further line one action entry
//! (`parse_actions`). Checked, beyond "never panics":
//! - a match that parses renders (`Display`) to text that parses back to the same match, and
//!   renders the same again;
//! - its prerequisite check, field list and `matches` run on it;
//! - an action list that parses renders (`format_actions`) to entries that parse back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;

use flowtable::action::{format_actions, parse_actions};
use flowtable::key::extract;
use flowtable::{Match, PortNo};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("");
    match_round_trip(first);
    let entries: Vec<&str> = lines.collect();
    if !entries.is_empty() {
        action_round_trip(&entries);
    }
});

fn match_round_trip(text: &str) {
    let m: Match = match text.parse() {
        Ok(m) => m,
        Err(e) => {
            // The message, with its "did you mean" suggestion, is what the API answers. The
            // suggestion's edit distance (bounded, 40 characters at most) costs ten times the
            // parse under coverage instrumentation: rendered for one input in eight.
            if text.len().is_multiple_of(8) {
                let _ = e.to_string();
            }
            return;
        }
    };
    let shown = m.to_string();
    let back: Match = shown
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} parsed, rendered as {shown:?}, which fails: {e}"));
    assert_eq!(
        back, m,
        "{text:?} -> {shown:?} parses back to another match"
    );
    assert_eq!(back.to_string(), shown, "rendering is stable");
    let _ = m.check_prerequisites().map_err(|e| e.to_string());
    for (field, value) in m.fields() {
        // Each field's canonical text sets that field again.
        let mut one = Match::any();
        one.set(field, &value)
            .unwrap_or_else(|e| panic!("{field}={value:?} from {shown:?}: {e}"));
    }
    // The match's own value is a key it matches.
    assert!(
        m.matches(m.value()),
        "{shown:?} does not match its own value"
    );
    let _ = m.matches(&extract(text.as_bytes(), PortNo(1)));
}

fn resolve(name: &str) -> Option<PortNo> {
    match name {
        "vm1" => Some(PortNo(1)),
        "vm2" => Some(PortNo(2)),
        _ => name.parse().ok().map(PortNo),
    }
}

fn name_of(p: PortNo) -> Option<String> {
    match p.0 {
        1 => Some("vm1".to_string()),
        2 => Some("vm2".to_string()),
        _ => None,
    }
}

fn action_round_trip(entries: &[&str]) {
    let actions = match parse_actions(entries, &resolve) {
        Ok(a) => a,
        Err(e) => {
            if entries.len().is_multiple_of(8) {
                let _ = e.to_string();
            }
            return;
        }
    };
    let shown = format_actions(&actions, &name_of);
    let back = parse_actions(&shown, &resolve)
        .unwrap_or_else(|e| panic!("{entries:?} parsed, rendered as {shown:?}, which fails: {e}"));
    assert_eq!(back, actions, "{entries:?} -> {shown:?}");
}
