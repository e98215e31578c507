//! `vswitchd --config FILE`: the vswitch daemon.

use clap::Parser;

fn main() -> std::process::ExitCode {
    api::daemon::init_logging();
    let args = api::daemon::Args::parse();
    match api::daemon::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain: "starting the switch: port \"vm1\": ...".
            eprintln!("vswitchd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
