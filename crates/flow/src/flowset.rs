//! A set of flows, as `serve`, `chat` and `validate` load them from a folder: the checks across
//! files (one default flow at most, a keyword in one flow only, unique flow names) and trigger
//! matching. Reading the files is the caller's job; this module only sees their text.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::compile::{load_flow, normalize_keyword, LoadedFlow};
use crate::diagnostic::Diagnostic;
use crate::flow::Flow;
use crate::positions::Positions;

/// Loaded flows, ready to run. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct FlowSet {
    flows: Vec<Arc<Flow>>,
}

/// Below this many files per thread, compiling on one thread is quicker than starting more.
const FILES_PER_THREAD: usize = 64;

/// Compiles every source, in order. Many files (a start-up with hundreds of flows) are split
/// between the machine's cores: compiling is independent per file, and the checks across files
/// run afterwards, in file order, so the diagnostics do not depend on the threads.
fn load_all(sources: &[FlowSource]) -> Vec<LoadedFlow> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(sources.len() / FILES_PER_THREAD).max(1);
    let compile = |chunk: &[FlowSource]| -> Vec<LoadedFlow> {
        chunk
            .iter()
            .map(|source| load_flow(&source.file, &source.text))
            .collect()
    };
    if threads == 1 {
        return compile(sources);
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = sources
            .chunks(sources.len().div_ceil(threads))
            .map(|chunk| scope.spawn(move || compile(chunk)))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// One flow file's name and text.
#[derive(Clone, Debug)]
pub struct FlowSource {
    pub file: String,
    pub text: String,
}

impl FlowSet {
    /// Compiles every source and checks them together. The set holds the flows that compiled;
    /// callers refuse to start when any diagnostic is an error.
    pub fn load(sources: &[FlowSource]) -> (FlowSet, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let mut flows: Vec<Arc<Flow>> = Vec::new();
        // Which flow (index in `flows`) has each name, and which one first has each keyword: a
        // thousand flows are checked in linear time.
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut keywords: HashMap<String, usize> = HashMap::new();
        let mut default_flow: Option<usize> = None;
        for (source, loaded) in sources.iter().zip(load_all(sources)) {
            diagnostics.extend(loaded.diagnostics);
            let Some(flow) = loaded.flow else { continue };
            // Positions are only needed for a diagnostic, which is rare: read them then.
            let positions = std::cell::OnceCell::new();
            let positions = || positions.get_or_init(|| Positions::of(&source.text));
            if let Some(&other) = names.get(&flow.name) {
                diagnostics.push(
                    Diagnostic::error(
                        &source.file,
                        positions().value("flow"),
                        format!(
                            "flow `{}` is also defined in {}",
                            flow.name, flows[other].file
                        ),
                    )
                    .with_hint("flow names must be unique"),
                );
                continue;
            }
            if flow.is_default {
                if let Some(other) = default_flow.map(|index| &flows[index]) {
                    diagnostics.push(
                        Diagnostic::error(
                            &source.file,
                            positions().value("triggers/default"),
                            format!(
                                "flow `{}` is a second default flow; `{}` ({}) is one already",
                                flow.name, other.name, other.file
                            ),
                        )
                        .with_hint("only one flow may be `default: true`"),
                    );
                }
            }
            for (index, keyword) in flow.keywords.iter().enumerate() {
                if let Some(other) = keywords.get(keyword).map(|&other| &flows[other]) {
                    diagnostics.push(
                        Diagnostic::error(
                            &source.file,
                            positions().value(&format!("triggers/keywords/{index}")),
                            format!(
                                "keyword `{keyword}` also starts flow `{}` ({})",
                                other.name, other.file
                            ),
                        )
                        .with_hint("a keyword may start one flow only"),
                    );
                }
            }
            let index = flows.len();
            names.insert(flow.name.clone(), index);
            for keyword in &flow.keywords {
                keywords.entry(keyword.clone()).or_insert(index);
            }
            if flow.is_default && default_flow.is_none() {
                default_flow = Some(index);
            }
            flows.push(Arc::new(flow));
        }
        (FlowSet { flows }, diagnostics)
    }

    /// A set from already compiled flows (tests, replays).
    pub fn from_flows(flows: Vec<Flow>) -> FlowSet {
        FlowSet {
            flows: flows.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn flows(&self) -> &[Arc<Flow>] {
        &self.flows
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Flow>> {
        self.flows.iter().find(|f| f.name == name)
    }

    /// The flow a message's text starts by keyword (whole message, case- and space-insensitive).
    pub fn by_keyword(&self, text: &str) -> Option<&Arc<Flow>> {
        let normalized = normalize_keyword(text);
        if normalized.is_empty() {
            return None;
        }
        self.flows.iter().find(|f| f.keywords.contains(&normalized))
    }

    /// The fallback flow.
    pub fn default_flow(&self) -> Option<&Arc<Flow>> {
        self.flows.iter().find(|f| f.is_default)
    }
}
