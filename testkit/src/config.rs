//! Config-file text for tests: the `[switch]` table and the `[[port]]` tables most tests
//! start `vswitchd` or a `Switch` with, so each test writes only what is particular to it.

use std::path::Path;

/// The `[switch]` table with the PMD on `cpu`, then `extra` lines (e.g. a `socket_dir` line
/// from `Scratch::socket_dir`).
pub fn switch_table(cpu: usize, extra: &str) -> String {
    format!("[switch]\npmd_cores = [{cpu}]\n{extra}\n")
}

/// The `[switch]` line that makes vhost-user ports offer the packed ring (`packed`), or
/// nothing (they do not by default).
pub fn packed_ring(packed: bool) -> &'static str {
    if packed {
        "\npacked_ring = true\n"
    } else {
        ""
    }
}

/// A `[[port]]` table for each name: in-memory ports, the ports tests inject into.
pub fn memory_ports(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("\n[[port]]\nname = \"{name}\"\ntype = \"memory\"\n"))
        .collect()
}

/// A vhost-user `[[port]]` table on `socket`, in `mode` (`server` or `client`).
pub fn vhost_port(name: &str, socket: &Path, mode: &str) -> String {
    format!(
        "\n[[port]]\nname = \"{name}\"\ntype = \"vhost-user\"\nsocket = {:?}\nmode = \"{mode}\"\n",
        socket.display().to_string()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse_as_toml() {
        let text = switch_table(1, "socket_dir = \"/tmp\"")
            + &memory_ports(&["a", "b"])
            + &vhost_port("vm1", Path::new("/tmp/vm1.sock"), "client");
        let doc: toml::Table = text.parse().unwrap();
        assert_eq!(doc["switch"]["pmd_cores"][0].as_integer(), Some(1));
        assert_eq!(doc["switch"]["socket_dir"].as_str(), Some("/tmp"));
        let ports = doc["port"].as_array().unwrap();
        let names: Vec<_> = ports.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["a", "b", "vm1"]);
        assert_eq!(ports[2]["socket"].as_str(), Some("/tmp/vm1.sock"));
        assert_eq!(ports[2]["mode"].as_str(), Some("client"));
    }
}
