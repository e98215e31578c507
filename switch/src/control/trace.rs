//! Tracing a frame: what the datapath would do with it, asked of the PMD whose cache it
//! would meet.

use super::{Switch, SwitchError, Trace, TraceRequest, PMD_TIMEOUT};
use crate::pmd::PmdCmd;

impl Switch {
    /// What the datapath would do with `frame` arriving on the port named `in_port`, asked
    /// of the PMD polling that port's first rx queue (its cache is the one the frame would
    /// meet). The frame is not forwarded, learned or counted.
    pub fn trace(&self, in_port: &str, frame: Vec<u8>) -> Result<Trace, SwitchError> {
        let (port, pmd) = {
            let st = self.lock();
            let p = st
                .ports
                .iter()
                .find(|p| p.info.config.name == in_port)
                .ok_or_else(|| SwitchError::NoSuchPort(in_port.to_string()))?;
            (p.info.no, p.info.rxq_pmds.first().copied().unwrap_or(0))
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(
            pmd,
            PmdCmd::Trace(
                Box::new(TraceRequest {
                    in_port: port,
                    frame,
                }),
                tx,
            ),
        );
        rx.recv_timeout(PMD_TIMEOUT)
            .map_err(|_| SwitchError::PmdTimeout(pmd))
    }
}
