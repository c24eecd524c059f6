//! The one place that parses YAML text into the flow model, so that replacing serde_yaml (marked
//! deprecated upstream) with a maintained fork is a one-line change.
//!
//! Nesting is limited to [`MAX_DEPTH`] levels before serde_yaml sees the text: its own limit (128)
//! comes too late for a deeply nested condition (`not: { not: ... }`), whose recursive
//! deserialization overflows a 2 MiB thread stack (tokio's workers, where a SIGHUP reload runs)
//! at about 75 levels in a debug build.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

pub use serde_yaml::Error;

/// The deepest nesting of mappings and sequences a flow file may have.
pub const MAX_DEPTH: usize = 40;

/// Deserializes a YAML document.
pub fn from_str<T: serde::de::DeserializeOwned>(source: &str) -> Result<T, Error> {
    let mut depth = Depth::default();
    // The event parser is not recursive; a syntax error is left for serde_yaml to report.
    let _ = Parser::new_from_str(source).load(&mut depth, false);
    if depth.deepest > MAX_DEPTH {
        return Err(serde::de::Error::custom(format!(
            "the YAML nests {} levels deep (at most {MAX_DEPTH}); flatten the conditions or the body",
            depth.deepest
        )));
    }
    serde_yaml::from_str(source)
}

#[derive(Default)]
struct Depth {
    current: usize,
    deepest: usize,
}

impl MarkedEventReceiver for Depth {
    fn on_event(&mut self, event: Event, _mark: Marker) {
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                self.current += 1;
                self.deepest = self.deepest.max(self.current);
            }
            Event::MappingEnd | Event::SequenceEnd => self.current = self.current.saturating_sub(1),
            _ => {}
        }
    }
}
