//! The REST API's router, in-process, with fuzzed methods, paths and bodies.
//!
//! The switch runs for the whole process (one PMD, memory ports `a` and `b`, token auth on),
//! as vswitchd runs it; each input is a few requests through the real router
//! (`api::server::router`, `tower::ServiceExt::oneshot`) on a current-thread runtime like the
//! server's. Input format, so that seeds and a dictionary are plain text: requests separated
//! by NUL bytes; each is `METHOD PATH`, a newline, and the body. A line starting with `!`
//! sends no token, `?` a wrong one.
//!
//! Checked, beyond "never panics": no answer is a 5xx but the documented 503 (a change the
//! PMDs did not confirm in time: "accepted ... not confirmed"); every error answer (4xx) is
//! the documented JSON `{"error": string, "field": string or null}`.
//!
//! After each input the switch goes back to its two memory ports and no flows, so inputs do
//! not pile state on each other. Bodies that would create a port touching the host (a
//! vhost-user socket at a fuzzed path, a tap or AF_XDP port on a real interface) are not
//! sent; memory and vxlan ports are.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use switch::config::{PortConfig, PortType, SwitchConfig};
use switch::Switch;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-token";
const BASE_PORTS: [&str; 2] = ["a", "b"];

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Arc<api::app::App>,
    router: Router,
}

fn memory_port(name: &str) -> PortConfig {
    serde_json::from_value(serde_json::json!({"name": name, "type": "memory"}))
        .expect("a memory port config")
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg = SwitchConfig::default();
        let sw = Switch::new(&cfg).expect("switch starts");
        for name in BASE_PORTS {
            sw.add_port(memory_port(name)).expect("memory port");
        }
        let app = Arc::new(api::app::App::new(sw, None, cfg, Some(TOKEN.to_string())));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let router = api::server::router(app.clone());
        Fixture { rt, app, router }
    })
}

/// True when `body` is a port config (read as the server reads it) of a type that would
/// touch the host.
fn touches_host(body: &[u8]) -> bool {
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, PortConfig>(de) {
        Ok(p) => !matches!(p.kind, PortType::Memory | PortType::Vxlan),
        Err(_) => false,
    }
}

/// Back to the two memory ports and no flows.
fn reset(app: &api::app::App) {
    let sw = &app.switch;
    if sw.flow_count() > 0 {
        sw.del_all_flows().expect("deleting every flow");
    }
    let ports = sw.ports();
    for p in &ports {
        if !BASE_PORTS.contains(&p.config.name.as_str()) {
            sw.del_port(&p.config.name).expect("deleting a fuzzed port");
        }
    }
    for name in BASE_PORTS {
        if !ports.iter().any(|p| p.config.name == name) {
            sw.add_port(memory_port(name))
                .expect("re-adding a base port");
        }
    }
}

fn check_error_body(what: &str, status: StatusCode, body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: {status} with a body that is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    let ok = v.get("error").is_some_and(|e| e.is_string())
        && v.get("field").is_some_and(|f| f.is_null() || f.is_string());
    assert!(
        ok,
        "{what}: {status} with body {v}, not {{\"error\", \"field\"}}"
    );
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    for req in data.split(|&b| b == 0).take(8) {
        let (line, body) = match req.iter().position(|&b| b == b'\n') {
            Some(i) => (&req[..i], &req[i + 1..]),
            None => (req, &[][..]),
        };
        let (auth, line) = match line.first() {
            Some(b'!') => (None, &line[1..]),
            Some(b'?') => (Some("not-the-token"), &line[1..]),
            _ => (Some(TOKEN), line),
        };
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let (method, path) = line.split_once(' ').unwrap_or((line, "/"));
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            continue;
        };
        if touches_host(body) {
            continue;
        }
        let mut b = Request::builder().method(method.clone()).uri(path);
        if let Some(t) = auth {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        // Not a request hyper would pass on (a path with spaces, say): nothing to test.
        let Ok(request) = b.body(Body::from(body.to_vec())) else {
            continue;
        };
        let what = format!(
            "{method} {path:?} with body {:?}",
            String::from_utf8_lossy(body)
        );
        let router = fx.router.clone();
        let (status, bytes) = fx.rt.block_on(async move {
            let res = router
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
                .await
                .expect("a response body");
            (status, bytes)
        });
        if status.is_server_error() {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                status == StatusCode::SERVICE_UNAVAILABLE && text.contains("not confirmed"),
                "{what}: {status} {text}"
            );
        }
        if status.is_client_error() && method != Method::HEAD {
            check_error_body(&what, status, &bytes);
        }
    }
    reset(&fx.app);
});
