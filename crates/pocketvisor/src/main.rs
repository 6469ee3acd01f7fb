//! `pocketvisor`: the mobile hypervisor's command line.

use clap::Parser;

/// Pocketvisor runs several phone operating systems side by side, each in its own VM.
#[derive(Parser, Debug)]
#[command(name = "pocketvisor", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!("pocketvisor: no command yet; see --help");
}
