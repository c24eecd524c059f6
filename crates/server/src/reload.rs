//! Loading the flows folder at start-up and reloading it while running (SIGHUP or
//! [`crate::ServerHandle::reload_flows`]).
//!
//! [`load_flows`] reads every `*.yaml` / `*.yml` file of the folder (sorted by name, not
//! recursive), compiles them together and refuses the set when any diagnostic is an error, with a
//! [`FlowsError`] whose `Display` lists every diagnostic as `validate` prints them. [`LiveFlows`]
//! holds the running [`Engine`]; a reload swaps it in one step, so a turn uses one set of flows from
//! start to end, and conversations keep running (a conversation whose step no longer exists is
//! ended politely by the engine). A reload that fails keeps the old flows.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use flowbot_engine::Engine;
use flowbot_flow::{Diagnostic, FlowSet, FlowSource};

use crate::metrics::Metrics;

/// Why the flows could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FlowsError {
    #[error("could not read the flows folder {dir}: {error}")]
    Read { dir: PathBuf, error: std::io::Error },
    #[error("no flow files (*.yaml, *.yml) in {dir}")]
    Empty { dir: PathBuf },
    #[error("the flows in {dir} have {} error(s):\n{}", count_errors(.diagnostics), list(.diagnostics))]
    Invalid {
        dir: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

/// Flows that loaded, with their warnings.
#[derive(Clone, Debug)]
pub struct LoadedFlows {
    pub flows: FlowSet,
    pub files: usize,
    pub warnings: Vec<Diagnostic>,
}

/// Reads and compiles the flows of `dir`.
pub fn load_flows(dir: &Path) -> Result<LoadedFlows, FlowsError> {
    let read_error = |error| FlowsError::Read {
        dir: dir.to_owned(),
        error,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let is_flow = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        if is_flow && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(FlowsError::Empty {
            dir: dir.to_owned(),
        });
    }
    let mut sources = Vec::with_capacity(paths.len());
    for path in &paths {
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        sources.push(FlowSource {
            file: path.display().to_string(),
            text,
        });
    }
    let (flows, diagnostics) = FlowSet::load(&sources);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(FlowsError::Invalid {
            dir: dir.to_owned(),
            diagnostics,
        });
    }
    Ok(LoadedFlows {
        flows,
        files: paths.len(),
        warnings: diagnostics,
    })
}

/// The engine the workers run, swappable while running.
#[derive(Debug)]
pub struct LiveFlows {
    dir: PathBuf,
    engine: RwLock<Engine>,
}

impl LiveFlows {
    pub fn new(dir: PathBuf, engine: Engine) -> LiveFlows {
        LiveFlows {
            dir,
            engine: RwLock::new(engine),
        }
    }

    /// The current engine (cheap to clone: flows and settings are shared).
    pub fn engine(&self) -> Engine {
        match self.engine.read() {
            Ok(engine) => engine.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether any flow is loaded.
    pub fn is_loaded(&self) -> bool {
        !self.engine().flows().is_empty()
    }

    /// Reads the folder again and swaps the flows in; on error the old flows stay.
    pub fn reload(&self, metrics: &Metrics) -> Result<LoadedFlows, FlowsError> {
        let loaded = match load_flows(&self.dir) {
            Ok(loaded) => loaded,
            Err(error) => {
                metrics.flow_reload(false);
                tracing::error!(dir = %self.dir.display(), "flow reload refused, the old flows keep running:\n{error}");
                return Err(error);
            }
        };
        let engine = self.engine().with_flows(loaded.flows.clone());
        match self.engine.write() {
            Ok(mut current) => *current = engine,
            Err(poisoned) => *poisoned.into_inner() = engine,
        }
        metrics.flow_reload(true);
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        tracing::info!(dir = %self.dir.display(), flows = loaded.flows.flows().len(), "flows reloaded");
        Ok(loaded)
    }
}

fn count_errors(diagnostics: &[Diagnostic]) -> usize {
    diagnostics.iter().filter(|d| d.is_error()).count()
}

fn list(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_flow_is_refused_with_its_diagnostics() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "flow: bad\nsteps:\n  - id: a\n    goto: nowhere\n",
        )
        .unwrap();
        let error = load_flows(dir.path()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("bad.yaml:"), "{text}");
        assert!(matches!(error, FlowsError::Invalid { .. }));
    }

    #[test]
    fn an_empty_folder_is_refused_and_a_good_flow_loads() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_flows(dir.path()),
            Err(FlowsError::Empty { .. })
        ));
        std::fs::write(dir.path().join("notes.txt"), "not a flow").unwrap();
        std::fs::write(
            dir.path().join("hello.yaml"),
            "flow: hello\ntriggers:\n  default: true\nsteps:\n  - id: greet\n    say: Hello\n",
        )
        .unwrap();
        let loaded = load_flows(dir.path()).unwrap();
        assert_eq!(loaded.files, 1);
        assert_eq!(loaded.flows.flows().len(), 1);
    }
}
