//! Disconnect and reconnect: a frontend that goes away takes only its port's state with it;
//! the queue handles the PMDs hold report nothing meanwhile and work again afterwards, in
//! server and in client mode.

use ports::vhost::test_utils as driver;

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use driver::*;
use ports::vhost::VhostUserPort;
use ports::{Port, RxQueue, TxQueue};
use vhost::vhost_user::Frontend;

/// One frame each way through `g` and the queues.
fn check_traffic(g: &mut Guest, rxq: &mut dyn RxQueue, txq: &mut dyn TxQueue, seed: u8) {
    let f = frame(90, seed);
    let (a, l) = g.tx_buffer(&f);
    g.add_chain(1, &[(a, l, 0)]);
    g.publish(1);
    let mut pkts = burst();
    assert_eq!(rxq.rx_burst(&mut pkts), 1);
    assert_eq!(pkts[0].data(), &f[..]);

    let b = g.alloc(2048);
    g.add_chain(0, &[(b, 2048, DESC_F_WRITE)]);
    g.publish(0);
    assert_eq!(txq.tx_burst(&mut pkts[..1]), 1);
    assert_eq!(g.read(b + 12, 90), f);
}

fn check_silent(port: &VhostUserPort, rxq: &mut dyn RxQueue, txq: &mut dyn TxQueue) {
    let mut pkts = burst();
    assert_eq!(rxq.rx_burst(&mut pkts), 0);
    pkts[0].copy_from(&frame(60, 0));
    assert_eq!(txq.tx_burst(&mut pkts[..1]), 0);
    assert!(rxq.enable_notify(), "nothing can arrive: the PMD may sleep");
    rxq.disable_notify();
    assert!(port.stats().vrings.iter().all(|v| !v.running));
}

#[test]
fn server_mode_disconnect_and_reconnect() {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let mut port = VhostUserPort::server(&path, 1).unwrap();
    let mut rxq = port.take_rxq(0).unwrap();
    let mut txq = port.txq(0).unwrap();
    check_silent(&port, &mut *rxq, &mut *txq);
    assert_eq!(
        Port::connected(&port),
        Some(false),
        "the state metrics export"
    );

    let mut g = Guest::connect(&path, 1, MRG);
    check_traffic(&mut g, &mut *rxq, &mut *txq, 1);
    assert_eq!(Port::connected(&port), Some(true));
    drop(g);
    wait_for("disconnect", || !port.is_connected());
    check_silent(&port, &mut *rxq, &mut *txq);
    assert!(!port.stats().connected);
    assert_eq!(Port::connected(&port), Some(false));

    let mut g = Guest::connect(&path, 1, EVENT_IDX);
    check_traffic(&mut g, &mut *rxq, &mut *txq, 2);
    // The wakeup fd the PMD registered once still works with the new kick fd.
    assert!(rxq.enable_notify());
    let (a, l) = g.tx_buffer(&frame(60, 3));
    g.add_chain(1, &[(a, l, 0)]);
    g.publish(1);
    assert!(readable(rxq.wait_fd().unwrap()));
    rxq.disable_notify();
    rxq.ack_wakeup();
    assert_eq!(port.stats().connections, 2);
}

#[test]
fn server_mode_replaces_a_stale_socket_and_removes_it_on_drop() {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let stale = UnixListener::bind(&path).unwrap();
    drop(stale);
    let port = VhostUserPort::server(&path, 1).unwrap();
    let _g = Guest::connect(&path, 1, 0);
    wait_for("connect", || port.is_connected());
    let t = Instant::now();
    drop(port);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop does not hang on a live connection"
    );
    assert!(!path.exists());

    std::fs::write(&path, b"not a socket").unwrap();
    assert!(
        VhostUserPort::server(&path, 1).is_err(),
        "a regular file is never unlinked"
    );
    assert!(VhostUserPort::server(&d.path("x.sock"), 0).is_err());
}

#[test]
fn client_mode_retries_and_reconnects() {
    let d = SockDir::new();
    let path = d.path("vm.sock");
    let mut port = VhostUserPort::client(&path, 1).unwrap();
    let mut rxq = port.take_rxq(0).unwrap();
    let mut txq = port.txq(0).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    assert!(!port.is_connected(), "nobody listens yet");

    // The "VM" comes up: the port finds it on its next retry.
    let listener = UnixListener::bind(&path).unwrap();
    let (s, _) = listener.accept().unwrap();
    let mut g = Guest::setup(Frontend::from_stream(s, 2), 1, MRG | EVENT_IDX);
    check_traffic(&mut g, &mut *rxq, &mut *txq, 1);

    // The VM restarts: the port reconnects by itself (at once: the listener's backlog
    // accepts the connection before the test does).
    drop(g);
    wait_for("reconnect", || port.stats().connections == 2);
    check_silent(&port, &mut *rxq, &mut *txq);
    let (s, _) = listener.accept().unwrap();
    let mut g = Guest::setup(Frontend::from_stream(s, 2), 1, 0);
    check_traffic(&mut g, &mut *rxq, &mut *txq, 2);
    assert_eq!(port.stats().connections, 2);

    let t = Instant::now();
    drop(port);
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn client_mode_port_drops_while_retrying() {
    let d = SockDir::new();
    let port = VhostUserPort::client(&d.path("nobody.sock"), 2).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    drop(port);
    assert!(t.elapsed() < Duration::from_secs(2));
}
