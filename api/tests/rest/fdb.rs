//! `GET`/`DELETE /v1/fdb` on MACs the switch really learned: listed by VLAN and by VNI, and
//! gone after a flush.

use super::*;

/// (mac, port, vlan) of each entry of a `GET /v1/fdb` answer, sorted.
fn fdb_entries(v: &Value) -> Vec<(String, String, Option<u64>)> {
    let mut out: Vec<_> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|e| {
            (
                e["mac"].as_str().unwrap().to_string(),
                e["port"].as_str().unwrap().to_string(),
                e["vlan"].as_u64(),
            )
        })
        .collect();
    out.sort();
    out
}

/// MACs learned through traffic on access ports of VLANs 10 and 20 and an untagged port:
/// `?vlan=N` lists one VLAN's, `?vlan=0` the untagged ones, and `?vni=N` those of the local
/// VLAN the vxlan port with VNI N is bridged into (learning is per local VLAN).
#[test]
fn fdb_lists_learned_macs_by_vlan_and_by_vni() {
    let sw = common::learned_vlan_switch();
    let e = |mac: &str, port: &str, vlan: Option<u64>| {
        (format!("02:00:00:00:00:{mac}"), port.to_string(), vlan)
    };
    let (s, all) = sw.get("/v1/fdb");
    assert_eq!(s, 200, "{all}");
    assert_eq!(fdb_entries(&all).len(), 5, "{all}");
    let vlan10 = vec![e("0a", "a", Some(10)), e("0b", "b", Some(10))];
    let vlan20 = vec![e("0c", "c", Some(20)), e("0d", "d", Some(20))];
    for (query, want) in [
        ("?vlan=10", vlan10.clone()),
        ("?vlan=20", vlan20.clone()),
        ("?vlan=0", vec![e("0e", "e", None)]),
        ("?vlan=30", vec![]),
        ("?vni=5001", vlan20.clone()),
    ] {
        let (s, v) = sw.get(&format!("/v1/fdb{query}"));
        assert_eq!(s, 200, "{query}: {v}");
        assert_eq!(fdb_entries(&v), want, "{query}: {v}");
    }
    let (s, v) = sw.get("/v1/fdb?vlan=10");
    assert_eq!(v[0]["domain"], "vlan 10", "{v}");
    assert!(v[0]["age_secs"].as_u64().is_some_and(|a| a < 60), "{v}");
    let (s2, v2) = sw.get("/v1/fdb?vni=5002");
    assert_eq!((s, s2, field(&v2)), (200, 404, "vni"), "{v2}");
    // Both: the entries both select.
    let (s, v) = sw.get("/v1/fdb?vni=5001&vlan=20");
    assert_eq!((s, fdb_entries(&v)), (200, vlan20.clone()), "{v}");
    let (s, v) = sw.get("/v1/fdb?vni=5001&vlan=10");
    assert_eq!((s, v), (200, json!([])));
}

/// `DELETE /v1/fdb` on a table that holds learned MACs: without the token or with a wrong one
/// it is refused (401) and every entry stays; with the token (204) every entry is gone, from
/// the API's list, from the switch, and from `normal`'s decisions (a destination that was
/// learned on a port floods again).
#[test]
fn fdb_flush_forgets_learned_macs() {
    const TOKEN: &str = "fdb-flush-test-token";
    let sw = common::learned_vlan_switch_with_token(Some(TOKEN));
    let (s, all) = sw.get("/v1/fdb");
    assert_eq!((s, fdb_entries(&all).len()), (200, 5), "{all}");
    // 02:00:00:00:00:0b <- 02:00:00:00:00:0a on `a` (VLAN 10, with `b`).
    let to_b = json!({
        "in_port": "a",
        "hex": format!("02000000000b 02000000000a 88b5 {}", "00".repeat(46)),
    })
    .to_string();
    let normal = |sw: &common::InProcess| {
        let (s, t) = sw.call("POST", "/v1/trace", Some(&to_b), None);
        assert_eq!(s, 200, "{t}");
        t["normal"].clone()
    };
    assert_eq!(normal(&sw), json!({"learned": "b"}));

    for token in [None, Some("not-the-token")] {
        let (s, v) = sw.call("DELETE", "/v1/fdb", None, token);
        assert_eq!((s, field(&v)), (401, "Authorization"), "{token:?}: {v}");
    }
    let (_, v) = sw.get("/v1/fdb");
    assert_eq!(
        fdb_entries(&v),
        fdb_entries(&all),
        "a refused flush forgot MACs"
    );
    assert_eq!(sw.app.switch.fdb().unwrap().len(), 5);

    let (s, v) = sw.call("DELETE", "/v1/fdb", None, Some(TOKEN));
    assert_eq!((s, &v), (204, &Value::Null), "{v}");
    let (s, v) = sw.get("/v1/fdb");
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = sw.get("/v1/fdb?vlan=10");
    assert_eq!((s, v), (200, json!([])));
    assert_eq!(
        sw.app.switch.fdb().unwrap(),
        vec![],
        "the PMDs still hold MACs"
    );
    assert_eq!(
        normal(&sw),
        json!({"flood": ["b"]}),
        "`normal` still knows where 02:00:00:00:00:0b is"
    );
}
