//! The API's contract and limits: what `/openapi.json` says of port and flow bodies, bodies
//! over their route's limit (413), connections over the cap (503), and path parameters that
//! do not decode (the JSON error, not axum's plain text).

use super::*;

/// The OpenAPI document describes the port and flow bodies field by field (they were bare
/// objects): names, types, enums, what is required, and where the bodies are used.
#[test]
fn openapi_describes_port_and_flow_bodies() {
    let sw = common::InProcess::start("");
    let (s, doc) = sw.get("/openapi.json");
    assert_eq!(s, 200);
    let schemas = &doc["components"]["schemas"];
    // A port is one schema per type (and per role for the underlay types), each naming every
    // field; the ones that do not apply may only be null.
    let port = &schemas["PortConfig"];
    let variants = port["oneOf"].as_array().unwrap_or_else(|| panic!("{port}"));
    let titles: Vec<&str> = variants
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "memory",
            "memory underlay",
            "vhost-user",
            "afxdp",
            "afxdp underlay",
            "tap",
            "tap underlay",
            "vxlan"
        ]
    );
    for v in variants {
        for f in [
            "name",
            "type",
            "socket",
            "mode",
            "queues",
            "interface",
            "ip",
            "gateway",
            "mtu",
            "vni",
            "remote_ip",
            "local_ip",
            "vlan",
        ] {
            assert!(v["properties"][f].is_object(), "{f} missing: {v}");
        }
        assert_eq!(v["additionalProperties"], false, "{v}");
    }
    let tap = &variants[5];
    assert_eq!(
        tap["properties"]["socket"],
        json!({"type": "null"}),
        "{tap}"
    );
    assert_eq!(
        tap["required"],
        json!(["name", "type", "interface"]),
        "{tap}"
    );
    // The socket rule: inside this switch's socket_dir (the default here).
    let socket = &variants[2]["properties"]["socket"];
    assert!(
        socket["pattern"]
            .as_str()
            .unwrap()
            .starts_with("^/run/vswitch(?:/"),
        "{socket}"
    );
    assert!(
        socket["description"]
            .as_str()
            .unwrap()
            .contains("socket_dir"),
        "{socket}"
    );
    let flow = &schemas["FlowConfig"];
    for f in ["priority", "match", "actions"] {
        assert!(
            flow["properties"][f].is_object(),
            "FlowConfig.{f} missing: {flow}"
        );
    }
    assert_eq!(flow["required"], json!(["actions"]), "{flow}");
    assert_eq!(flow["properties"]["priority"]["maximum"], 65535, "{flow}");
    assert_eq!(
        flow["properties"]["match"]["$ref"],
        "#/components/schemas/Match"
    );
    let shapes: Vec<&str> = schemas["Match"]["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        shapes,
        [
            "layer 2",
            "IPv4",
            "IPv4 with ports",
            "ICMP",
            "IPv6",
            "IPv6 with ports",
            "ICMPv6",
            "ARP"
        ]
    );
    // `drop` alone, or other actions.
    let actions = &flow["properties"]["actions"]["anyOf"];
    assert_eq!(actions[0]["maxItems"], 1, "{actions}");
    assert_eq!(actions[1]["minItems"], 1, "{actions}");
    // A trace frame: hex of 14 bytes or more, or fields, not both.
    let trace = &schemas["TraceRequest"]["oneOf"];
    assert_eq!(trace[0]["properties"]["hex"]["minLength"], 28, "{trace}");
    assert_eq!(
        trace[0]["properties"]["fields"],
        json!({"type": "null"}),
        "{trace}"
    );

    let body = |path: &str| {
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(body("/v1/ports"), "#/components/schemas/PortConfig");
    assert_eq!(body("/v1/flows"), "#/components/schemas/FlowConfig");
    assert_eq!(
        schemas["PortView"]["properties"]["config"]["$ref"],
        "#/components/schemas/PortConfig"
    );
    assert_eq!(
        schemas["BulkFlows"]["properties"]["flows"]["items"]["$ref"],
        "#/components/schemas/FlowConfig"
    );
    // Operation ids are unique, as OpenAPI requires (client generators name calls by them).
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| p.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operation ids among {ids:?}");
}

/// Each route takes bodies up to its own limit: 413 naming the limit past it, whether
/// `Content-Length` says so up front (answered before any body is sent) or a chunked body
/// grows past it; a trace of the largest frame, its hex spaced out, fits.
#[test]
fn bodies_over_their_route_limit_are_refused_with_413() {
    use std::io::Write;

    let dir = Scratch::new("rest-limits");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    let token = sw.token();
    let before = state_file(&sw);
    let json_error = |status: u16, head: &str, body: &str, limit: &str, path: &str| {
        assert_eq!(status, 413, "{head}\n{body}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains(limit) && e.contains(path), "{v}");
    };
    // Declared too large: refused from the headers alone (nothing more is sent).
    for (path, limit, declared, auth) in [
        ("/v1/trace", "384 KiB", 384 * 1024 + 1, false),
        ("/v1/ports", "64 KiB", 64 * 1024 + 1, true),
        ("/v1/flows", "64 KiB", 64 * 1024 + 1, true),
        ("/v1/flows/delete", "64 KiB", 64 * 1024 + 1, true),
        ("/v1/flows/bulk", "16 MiB", 16 * 1024 * 1024 + 1, true),
    ] {
        let auth = if auth {
            format!("Authorization: Bearer {token}\r\n")
        } else {
            String::new()
        };
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {declared}\r\nConnection: close\r\n\r\n"
        );
        let (status, head, body) = common::http_raw(sw.addr, req.as_bytes());
        json_error(status, &head, &body, limit, path);
    }
    // Chunked, no length up front: refused once what arrived passes the limit.
    let mut s = std::net::TcpStream::connect(sw.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let chunk = 384 * 1024 + 1;
    write!(
        s,
        "POST /v1/trace HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{chunk:x}\r\n"
    )
    .unwrap();
    s.write_all(&vec![b' '; chunk]).unwrap();
    s.write_all(b"\r\n").unwrap();
    let (status, head, body) = common::read_response(&mut s);
    json_error(status, &head, &body, "384 KiB", "/v1/trace");

    // The largest frame, a separator after every byte: within both the hex and body limits.
    let frame_len = 65_535 + 18;
    let mut hex = "ff:".repeat(6) + &"02 ".repeat(6) + "08 00 ";
    hex.push_str(&"ab\n".repeat(frame_len - 14));
    assert_eq!(hex.len(), 3 * frame_len);
    let trace = json!({"in_port": "a", "hex": hex}).to_string();
    assert!(trace.len() > 256 * 1024, "{}", trace.len());
    let (s, v) = sw.call("POST", "/v1/trace", Some(&trace), None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["normal"]["flood"], json!(["b"]), "{v}");
    // One byte more is refused by the hex rule, naming the largest frame.
    let longer = json!({"in_port": "a", "hex": "ab".repeat(frame_len + 1)}).to_string();
    let (s, v) = sw.call("POST", "/v1/trace", Some(&longer), None);
    assert_eq!((s, field(&v)), (400, "hex"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("65553"), "{v}");

    // A bulk request past the 64 KiB of single bodies is fine: 800 flows, ~85 KiB.
    let flows: Vec<Value> = (0..800)
        .map(|i| {
            json!({"priority": 1000 + i, "match": {"in_port": "a", "eth_type": "0x0800",
                   "ip_dst": format!("198.18.{}.{}", i / 200, i % 200)}, "actions": ["output:b"]})
        })
        .collect();
    let bulk = json!({ "flows": flows }).to_string();
    assert!(bulk.len() > 64 * 1024, "{}", bulk.len());
    let (s, v) = sw.auth("POST", "/v1/flows/bulk", Some(&bulk));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["ids"].as_array().unwrap().len(), 800);
    assert_ne!(state_file(&sw), before);
    sw.stop();
}

/// Each endpoint serves at most --api-max-connections connections: one more is answered 503
/// (JSON, Retry-After) and closed at once, while the held ones keep working; once one closes,
/// new connections are served again.
#[test]
fn connections_over_the_cap_are_refused_with_503() {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let dir = Scratch::new("rest-conns");
    let sw = Vswitchd::start(&dir, None, &["--api-max-connections", "2"]);
    // Two idle connections take both places (accepted in the order they connected).
    let mut held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(sw.addr).unwrap())
        .collect();
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let started = Instant::now();
    let (status, head, body) = common::http_raw(sw.addr, healthz);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused promptly"
    );
    assert_eq!(status, 503, "{head}\n{body}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("limit of 2 connections"),
        "{v}"
    );
    // The held connections are served meanwhile.
    let mut first = held.remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    first.write_all(healthz).unwrap();
    let (status, _, body) = common::read_response(&mut first);
    assert_eq!(status, 200, "{body}");
    drop(first);
    // Its place is free again once the server has seen it close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = common::http_raw(sw.addr, healthz);
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "the freed place was not reused");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    let log = sw.stop();
    assert!(log.contains("API connection refused"), "{log}");
}

/// Found by the `rest_bodies` fuzz target (docs/FUZZING.md): a path parameter that does not
/// decode (`%Ae` is byte 0xAE, not UTF-8) was answered by axum's own plain-text 400, not the
/// JSON error every other refusal is.
#[test]
fn undecodable_path_parameters_get_the_json_error() {
    let dir = Scratch::new("rest-path");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    for (method, path) in [
        ("DELETE", "/v1/ports/b%%%%%Ael_"),
        ("GET", "/v1/ports/%ff"),
        ("DELETE", "/v1/flows/%c3%28"),
    ] {
        // `call` panics on a body that is not JSON.
        let (status, v) = sw.auth(method, path, None);
        assert_eq!(status, 400, "{method} {path}: {v}");
        assert!(v["error"].is_string(), "{method} {path}: {v}");
        assert!(v["field"].is_null(), "{method} {path}: {v}");
    }
    let (status, _) = sw.call("GET", "/v1/ports/b", None, None);
    assert_eq!(status, 200, "port b untouched");
    sw.stop();
}
