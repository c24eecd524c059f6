//! Source positions of a YAML document: where each key and value of a flow file was written.
//!
//! serde gives the typed model but no positions for semantic checks (a dangling `goto`, a button
//! title that is too long). This module reads the same text once more with yaml-rust2's marked
//! event parser and records line and column for every node, addressed by its path
//! (`steps/3/ask/buttons/0/title`). It does no validation of its own.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A line and column, both counted from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Positions of keys and values, by path.
#[derive(Debug, Default)]
pub struct Positions {
    keys: HashMap<String, Position>,
    values: HashMap<String, Position>,
}

impl Positions {
    /// Reads the positions of a YAML text; a text that does not parse yields no positions
    /// (serde reports the syntax error with its own location).
    pub fn of(source: &str) -> Positions {
        let mut recorder = Recorder::default();
        let mut parser = Parser::new_from_str(source);
        let _ = parser.load(&mut recorder, false);
        recorder.positions
    }

    /// Where the key at `path` was written, else where its value was, else the nearest parent.
    pub fn key(&self, path: &str) -> Position {
        self.keys
            .get(path)
            .or_else(|| self.values.get(path))
            .copied()
            .unwrap_or_else(|| self.parent(path))
    }

    /// Where the value at `path` was written, else its key, else the nearest parent.
    pub fn value(&self, path: &str) -> Position {
        self.values
            .get(path)
            .or_else(|| self.keys.get(path))
            .copied()
            .unwrap_or_else(|| self.parent(path))
    }

    fn parent(&self, path: &str) -> Position {
        match path.rsplit_once('/') {
            Some((parent, _)) => self.key(parent),
            None => Position { line: 1, column: 1 },
        }
    }
}

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<Frame>,
    positions: Positions,
}

fn position(mark: Marker) -> Position {
    Position {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}/{child}")
    }
}

impl Recorder {
    /// Decides the path of the node that starts now; `None` when it is a mapping key.
    fn node_path(&mut self, scalar: Option<&str>, mark: Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, index }) => {
                let node = join(path, &index.to_string());
                *index += 1;
                Some(node)
            }
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some(name) => Some(join(path, &name)),
                None => {
                    let name = scalar.unwrap_or("?").to_string();
                    let node = join(path, &name);
                    self.positions.keys.insert(node, position(mark));
                    *key = Some(name);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, ..) => {
                if let Some(path) = self.node_path(Some(&text), mark) {
                    self.positions.values.insert(path, position(mark));
                }
            }
            Event::Alias(_) => {
                if let Some(path) = self.node_path(None, mark) {
                    self.positions.values.insert(path, position(mark));
                }
            }
            Event::MappingStart(..) => {
                let path = self.node_path(None, mark).unwrap_or_default();
                self.positions.values.insert(path.clone(), position(mark));
                self.stack.push(Frame::Mapping { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.node_path(None, mark).unwrap_or_default();
                self.positions.values.insert(path.clone(), position(mark));
                self.stack.push(Frame::Sequence { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_found_by_path() {
        let source = "flow: x\nsteps:\n  - id: a\n    say: hi\n  - id: b\n    goto: a\n";
        let positions = Positions::of(source);
        assert_eq!(positions.key("flow"), Position { line: 1, column: 1 });
        assert_eq!(
            positions.value("steps/1/goto"),
            Position {
                line: 6,
                column: 11
            }
        );
        assert_eq!(
            positions.key("steps/1/goto"),
            Position { line: 6, column: 5 }
        );
        assert_eq!(positions.key("steps/0/id"), Position { line: 3, column: 5 });
        // Unknown paths fall back to the nearest known parent.
        assert_eq!(
            positions.key("steps/1/nothing/deeper"),
            positions.key("steps/1")
        );
    }
}
