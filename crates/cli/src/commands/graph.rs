//! `flowbot graph FLOW`: the flow as a Mermaid flowchart on stdout.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::flow_files::read_flow_source;

pub fn run(file: &Path) -> Result<ExitCode> {
    let source = read_flow_source(file)?;
    let loaded = flowbot_flow::load_flow(&source.file, &source.text);
    let Some(flow) = loaded.flow else {
        for diagnostic in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            eprintln!("{diagnostic}");
        }
        bail!(
            "{} does not validate; fix it first (flowbot validate {})",
            file.display(),
            file.display()
        );
    };
    print!("{}", flowbot_flow::mermaid::to_mermaid(&flow));
    Ok(ExitCode::SUCCESS)
}
