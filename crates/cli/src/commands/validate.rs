//! `flowbot validate [PATH...]`: every problem of every flow as `file:line:column: error|warning:
//! message` with a hint line; exit 0 without errors, 1 with errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use flowbot_flow::FlowSet;

use crate::flow_files::read_flow_sources;

pub fn run(paths: &[PathBuf]) -> Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("flows")]
    } else {
        paths.to_vec()
    };
    let sources = read_flow_sources(&paths)?;
    if sources.is_empty() {
        anyhow::bail!(
            "no flow files (*.yaml, *.yml) found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (set, diagnostics) = FlowSet::load(&sources);
    for diagnostic in &diagnostics {
        println!("{diagnostic}");
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    println!(
        "{} file(s), {} flow(s) valid: {errors} error(s), {warnings} warning(s)",
        sources.len(),
        set.flows().len()
    );
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
