//! Reading flow files from the paths given on the command line (files, or folders of `.yaml` /
//! `.yml` files), for `validate`, `chat`, `graph` and `serve`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flowbot_flow::FlowSource;

/// The flow sources under the given paths, sorted by file name.
pub fn read_flow_sources(paths: &[PathBuf]) -> Result<Vec<FlowSource>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .with_context(|| format!("cannot read folder {}", path.display()))?;
            for entry in entries {
                let entry = entry?.path();
                if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    files.push(entry);
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.iter().map(|file| read_flow_source(file)).collect()
}

pub fn read_flow_source(file: &Path) -> Result<FlowSource> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read flow file {}", file.display()))?;
    Ok(FlowSource {
        file: file.display().to_string(),
        text,
    })
}
