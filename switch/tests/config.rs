//! Config files: a good one loads; each bad one is refused with the line, the field and why.

use switch::config::{Config, ConfigError, PortType};

const GOOD: &str = r#"
[switch]
pmd_cores = [0]

[[port]]
name = "vm1"
type = "memory"

[[port]]
name = "vm2"
type = "memory"

[[flow]]
priority = 100
match = { in_port = "vm1", eth_type = "0x0800", ip_dst = "198.18.0.0/24" }
actions = ["output:vm2"]

[[flow]]
match = { in_port = "vm2", tp_dst = 80, eth_type = "ipv4", ip_proto = "tcp" }
actions = ["drop"]
"#;

#[test]
fn good_config_loads() {
    let cfg = Config::from_toml(GOOD, "good.toml").unwrap();
    assert_eq!(cfg.switch.pmd_cores, vec![0]);
    assert_eq!(cfg.ports.len(), 2);
    assert_eq!(cfg.ports[0].kind, PortType::Memory);
    assert_eq!(cfg.flows[0].priority, 100);
    assert_eq!(cfg.flows[1].priority, 32768, "OpenFlow's default priority");
}

#[test]
fn the_issue_example_shape_parses() {
    let text = r#"
[switch]
pmd_cores = [0]

[[port]]
name = "vm1"
type = "vhost-user"
socket = "/run/vswitch/vm1.sock"
mode = "server"

[[port]]
name = "vm2"
type = "vhost-user"
socket = "/run/vswitch/vm2.sock"
mode = "client"
vlan = { mode = "trunk", allowed = [10, 20], native = 1 }

[[port]]
name = "uplink"
type = "afxdp"
interface = "eth1"
queues = 1
ip = "198.18.0.1/24"
gateway = "198.18.0.254"

[[port]]
name = "vx100"
type = "vxlan"
vni = 100
remote_ip = "198.18.0.2"
vlan = { mode = "access", tag = 10 }

[[flow]]
priority = 100
match = { in_port = "vm1", eth_type = "0x0800", ip_dst = "10.0.0.0/24" }
actions = ["output:vm2"]
"#;
    let cfg = Config::from_toml(text, "x.toml").unwrap();
    assert_eq!(cfg.ports[3].vni, Some(100));
    // The same model serializes back and re-parses identically (state files, API).
    let again = Config::from_toml(&toml::to_string(&cfg).unwrap(), "again.toml").unwrap();
    assert_eq!(again, cfg);
}

/// Loads `text` and returns the error message, asserting it is refused.
fn refused(text: &str) -> String {
    match Config::from_toml(text, "bad.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn with_flow(flow: &str) -> String {
    format!(
        "[switch]\npmd_cores = [0]\n\n[[port]]\nname = \"vm1\"\ntype = \"memory\"\n\n[[port]]\nname = \"vm2\"\ntype = \"memory\"\n\n[[flow]]\n{flow}\n"
    )
}

#[test]
fn toml_syntax_error_names_the_line() {
    let e = refused("[switch]\npmd_cores = [0\n");
    assert!(e.starts_with("bad.toml:2:"), "{e}");
}

#[test]
fn unknown_field_is_named() {
    let e = refused("[switch]\npmd_cores = [0]\npmd_core = 3\n");
    assert!(e.starts_with("bad.toml:3:1:"), "{e}");
    assert!(e.contains("pmd_core"), "{e}");
}

#[test]
fn cache_sizes_out_of_range_are_named() {
    let e = refused("[switch]\nemc_insert_inv_prob = 0\n");
    assert!(e.starts_with("bad.toml:2:"), "{e}");
    assert!(
        e.contains("switch.emc_insert_inv_prob") && e.contains("1..=1048576"),
        "{e}"
    );
    let e = refused("[switch]\nemc_entries = 1000\n");
    assert!(
        e.contains("switch.emc_entries") && e.contains("power of two"),
        "{e}"
    );
}

#[test]
fn unknown_port_type_is_named() {
    let e = refused("[[port]]\nname = \"a\"\ntype = \"vhostuser\"\n");
    assert!(e.contains("vhostuser") && e.contains("vhost-user"), "{e}");
    assert!(e.starts_with("bad.toml:3:"), "{e}");
}

#[test]
fn bad_prefix_names_line_and_field() {
    let e = refused(&with_flow(
        "match = { in_port = \"vm1\", eth_type = \"0x0800\", ip_dst = \"10.0.0.0/33\" }\nactions = [\"output:vm2\"]",
    ));
    assert!(e.starts_with("bad.toml:13:"), "{e}");
    assert!(e.contains("flow[0].match.ip_dst"), "{e}");
    assert!(e.contains("10.0.0.0/33"), "{e}");
}

#[test]
fn unknown_port_in_actions_is_named() {
    let e = refused(&with_flow(
        "match = { in_port = \"vm1\" }\nactions = [\"output:vm9\"]",
    ));
    assert!(e.starts_with("bad.toml:14:"), "{e}");
    assert!(
        e.contains("flow[0].actions[0]: \"output:vm9\": no port named \"vm9\""),
        "{e}"
    );
}

#[test]
fn unknown_in_port_is_named() {
    let e = refused(&with_flow(
        "match = { in_port = \"vm7\" }\nactions = [\"drop\"]",
    ));
    assert!(
        e.contains("flow[0].match.in_port") && e.contains("vm7"),
        "{e}"
    );
}

#[test]
fn missing_prerequisite_is_explained() {
    let e = refused(&with_flow(
        "match = { ip_dst = \"198.18.0.1\" }\nactions = [\"drop\"]",
    ));
    assert!(e.contains("flow[0].match") && e.contains("eth_type"), "{e}");
}

#[test]
fn duplicate_port_names_are_refused() {
    let e = refused(
        "[[port]]\nname = \"a\"\ntype = \"memory\"\n\n[[port]]\nname = \"a\"\ntype = \"memory\"\n",
    );
    assert!(e.starts_with("bad.toml:6:"), "{e}");
    assert!(e.contains("port[1].name"), "{e}");
}

#[test]
fn type_specific_fields_are_checked() {
    let e = refused("[[port]]\nname = \"a\"\ntype = \"vhost-user\"\n");
    assert!(
        e.contains("port[0].socket") && e.contains("required"),
        "{e}"
    );
    let e = refused("[[port]]\nname = \"a\"\ntype = \"memory\"\nvni = 5\n");
    assert!(
        e.contains("port[0].vni") && e.contains("does not apply"),
        "{e}"
    );
    assert!(e.starts_with("bad.toml:4:"), "{e}");
    let e = refused(
        "[[port]]\nname = \"a\"\ntype = \"memory\"\nvlan = { mode = \"access\", tag = 5000 }\n",
    );
    assert!(e.contains("port[0].vlan.tag") && e.contains("5000"), "{e}");
}

#[test]
fn missing_cpu_is_refused() {
    let e = refused("[switch]\npmd_cores = [4096]\n");
    assert!(
        e.contains("switch.pmd_cores") && e.contains("CPU 4096 does not exist or is offline"),
        "{e}"
    );
}

#[test]
fn missing_file_is_named() {
    let e = Config::load(std::path::Path::new("/nonexistent/vswitch.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/vswitch.toml"));
}

#[test]
fn a_trunk_without_allowed_means_every_vlan_and_an_empty_list_is_refused() {
    let cfg = Config::from_toml(
        "[[port]]\nname = \"t\"\ntype = \"memory\"\nvlan = { mode = \"trunk\" }\n",
        "t.toml",
    )
    .unwrap();
    let vlan = cfg.ports[0].vlan.as_ref().unwrap();
    assert_eq!(vlan.allowed, None);
    let e = refused(
        "[[port]]\nname = \"t\"\ntype = \"memory\"\nvlan = { mode = \"trunk\", allowed = [] }\n",
    );
    assert!(
        e.contains("port[0].vlan.allowed") && e.contains("omit `allowed`"),
        "{e}"
    );
}

#[test]
fn an_afxdp_mtu_its_umem_frames_cannot_carry_is_refused() {
    let port = |kind: &str, mtu: u16| {
        format!(
            "[[port]]\nname = \"up\"\ntype = \"{kind}\"\ninterface = \"eth9\"\nip = \"198.18.0.1/24\"\nmtu = {mtu}\n"
        )
    };
    let e = refused(&port("afxdp", 9000));
    assert!(e.starts_with("bad.toml:6:"), "{e}");
    assert!(
        e.contains("port[0].mtu") && e.contains("9000") && e.contains("at most 3826"),
        "{e}"
    );
    assert!(Config::from_toml(&port("afxdp", 3826), "ok.toml").is_ok());
    // A tap carries jumbo frames.
    assert!(Config::from_toml(&port("tap", 9000), "ok.toml").is_ok());
    // The same check guards ports added later (the API's path), before any interface is
    // touched.
    let sw = switch::Switch::new(&switch::config::SwitchConfig::default()).unwrap();
    let cfg = Config::from_toml(&port("tap", 9000), "ok.toml").unwrap();
    let mut up = cfg.ports[0].clone();
    up.kind = PortType::Afxdp;
    let e = sw.add_port(up).unwrap_err().to_string();
    assert!(e.contains("mtu") && e.contains("3826"), "{e}");
}

/// A config with one vhost-user port on `socket` (mode `mode`) and `switch` settings.
fn vhost_port(switch: &str, socket: &str, mode: &str) -> String {
    format!(
        "[switch]\npmd_cores = [0]\n{switch}\n[[port]]\nname = \"m\"\ntype = \"memory\"\n\n\
         [[port]]\nname = \"vm\"\ntype = \"vhost-user\"\nsocket = {socket:?}\nmode = {mode:?}\n"
    )
}

#[test]
fn vhost_user_sockets_must_be_inside_socket_dir() {
    // The default directory; both modes.
    for mode in ["server", "client"] {
        let cfg = Config::from_toml(&vhost_port("", "/run/vswitch/vm.sock", mode), "ok.toml")
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(cfg.switch.socket_dir, std::path::Path::new("/run/vswitch"));
        let e = refused(&vhost_port("", "/etc/x.sock", mode));
        assert!(
            e.contains(
                r#"port[1].socket: "/etc/x.sock" is outside switch.socket_dir "/run/vswitch""#
            ),
            "{mode}: {e}"
        );
        assert!(e.starts_with("bad.toml:11:"), "{e}");
    }
    for (socket, why) in [
        ("vm.sock", "must be an absolute path"),
        ("./vm.sock", "must be an absolute path"),
        ("/run/vswitch/../../etc/x.sock", "must not contain `..`"),
        ("/run/vswitch/a/../vm.sock", "must not contain `..`"),
        ("/run/vswitchx/vm.sock", "is outside switch.socket_dir"),
        ("/run/vswitch", "is switch.socket_dir itself"),
        ("/run/vswitch/", "is switch.socket_dir itself"),
    ] {
        let e = refused(&vhost_port("", socket, "server"));
        assert!(
            e.contains("port[1].socket") && e.contains(why),
            "{socket}: {e}"
        );
    }
    // A subdirectory is inside; so is any absolute path once the operator widens it to "/".
    Config::from_toml(
        &vhost_port("", "/run/vswitch/vms/a.sock", "server"),
        "ok.toml",
    )
    .unwrap();
    let wide = "socket_dir = \"/\"";
    Config::from_toml(&vhost_port(wide, "/etc/x.sock", "server"), "ok.toml").unwrap();
    let e = refused(&vhost_port(wide, "x.sock", "client"));
    assert!(e.contains("must be an absolute path"), "{e}");
    let other = "socket_dir = \"/srv/vm-sockets\"";
    let e = refused(&vhost_port(other, "/run/vswitch/vm.sock", "server"));
    assert!(
        e.contains(r#"outside switch.socket_dir "/srv/vm-sockets""#),
        "{e}"
    );
}

#[test]
fn socket_dir_itself_must_be_absolute() {
    for dir in ["run/vswitch", "", "/run/../etc"] {
        let e = refused(&vhost_port(
            &format!("socket_dir = {dir:?}"),
            "/x.sock",
            "server",
        ));
        assert!(
            e.contains("switch.socket_dir") && e.contains("must be an absolute path"),
            "{dir:?}: {e}"
        );
        assert!(e.starts_with("bad.toml:3:"), "{e}");
    }
}

/// A symlinked directory inside socket_dir that points out of it does not let a socket out.
#[test]
fn a_symlink_out_of_socket_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("inner")).unwrap();
    let socket_dir = format!("socket_dir = {:?}", dir.path());
    for ok in [
        "vm.sock",
        "real/vm.sock",
        "inner/vm.sock",
        "not-yet/vm.sock",
    ] {
        let sock = dir.path().join(ok);
        Config::from_toml(
            &vhost_port(&socket_dir, sock.to_str().unwrap(), "server"),
            "ok.toml",
        )
        .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let sock = dir.path().join("escape/vm.sock");
    let e = refused(&vhost_port(&socket_dir, sock.to_str().unwrap(), "server"));
    assert!(
        e.contains("port[1].socket") && e.contains("is outside switch.socket_dir"),
        "{e}"
    );
    assert!(e.contains("resolves to"), "{e}");
}

/// The shipped example config loads (its sockets are inside the default socket_dir).
#[test]
fn the_example_config_is_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/vswitch.toml");
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.switch.socket_dir, std::path::Path::new("/run/vswitch"));
    let sockets: Vec<_> = cfg.ports.iter().filter_map(|p| p.socket.clone()).collect();
    assert_eq!(sockets.len(), 2, "{:?}", cfg.ports);
    assert!(
        sockets
            .iter()
            .all(|s| s.starts_with(&cfg.switch.socket_dir)),
        "{sockets:?}"
    );
}

#[test]
fn max_guest_memory_is_a_switch_setting_of_at_least_1_mib() {
    let cfg =
        Config::from_toml(&vhost_port("", "/run/vswitch/vm.sock", "server"), "ok.toml").unwrap();
    assert_eq!(cfg.switch.max_guest_memory, 4 << 40, "default: 4 TiB");
    let cfg = Config::from_toml(
        &vhost_port(
            "max_guest_memory = 17179869184",
            "/run/vswitch/vm.sock",
            "server",
        ),
        "ok.toml",
    )
    .unwrap();
    assert_eq!(cfg.switch.max_guest_memory, 16 << 30);
    let e = refused(&vhost_port(
        "max_guest_memory = 4096",
        "/run/vswitch/vm.sock",
        "server",
    ));
    assert!(
        e.contains("switch.max_guest_memory") && e.contains("less than 1 MiB"),
        "{e}"
    );
}
