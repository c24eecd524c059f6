//! Response paths: where a `save:` entry takes its value from in an outside answer.
//!
//! `data[0].Owner.name` (relative to the body root, as bot builders write it), full JSONPath
//! `$.data[0].Owner.name`, and the specials `$status`, `$body`, `$headers.NAME` and `$error`.
//! Paths are parsed once at load; a path that finds nothing, or finds null, yields `None` (the
//! variable is left empty), never an error. A path with a wildcard, slice, filter or descendant
//! segment yields the list of everything it found.

use jsonpath_rust::parser::model::JpQuery;
use serde_json::Value;

/// A compiled response path.
#[derive(Clone, Debug)]
pub enum ResponsePath {
    /// `$status`: the HTTP status code.
    Status,
    /// `$body`: the body as text.
    Body,
    /// `$headers.NAME`: a response header (case-insensitive).
    Header(String),
    /// `$error`: why the call failed (empty when it did not).
    Error,
    /// A JSONPath into the JSON body.
    Json {
        source: String,
        query: Box<JpQuery>,
        many: bool,
    },
}

/// The parts of an outside answer a path can read.
#[derive(Clone, Copy, Debug)]
pub struct ResponseView<'a> {
    pub status: Option<u16>,
    pub headers: &'a [(String, String)],
    pub body_text: &'a str,
    pub json: Option<&'a Value>,
    pub error: Option<&'a str>,
}

impl ResponsePath {
    /// Parses a path; the error message says what is wrong.
    pub fn parse(source: &str) -> Result<ResponsePath, String> {
        let trimmed = source.trim();
        match trimmed {
            "" => return Err("an empty response path".into()),
            "$status" => return Ok(ResponsePath::Status),
            "$body" => return Ok(ResponsePath::Body),
            "$error" => return Ok(ResponsePath::Error),
            _ => {}
        }
        if let Some(name) = trimmed.strip_prefix("$headers.") {
            if name.is_empty() {
                return Err("`$headers.` needs a header name, e.g. $headers.x-request-id".into());
            }
            return Ok(ResponsePath::Header(name.to_ascii_lowercase()));
        }
        let full = if trimmed.starts_with('$') {
            trimmed.to_string()
        } else if trimmed.starts_with('[') {
            format!("${trimmed}")
        } else {
            format!("$.{trimmed}")
        };
        let query = jsonpath_rust::parser::parse_json_path(&full).map_err(|error| {
            let detail = error
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            format!("not a valid path ({detail})")
        })?;
        let many = is_plural(&full);
        Ok(ResponsePath::Json {
            source: trimmed.to_string(),
            query: Box::new(query),
            many,
        })
    }

    /// The first field name of a JSON path below `data[n]` (for Zoho's `fields:` check).
    pub fn record_field(&self) -> Option<String> {
        let ResponsePath::Json { source, .. } = self else {
            return None;
        };
        let rest = source.trim_start_matches('$').trim_start_matches('.');
        let rest = rest.strip_prefix("data")?;
        let rest = rest.strip_prefix('[')?;
        let close = rest.find(']')?;
        let field = rest[close + 1..].strip_prefix('.')?;
        let end = field.find(['.', '[']).unwrap_or(field.len());
        Some(field[..end].to_string()).filter(|f| !f.is_empty())
    }

    /// Reads the value; `None` when the path finds nothing or null.
    pub fn read(&self, view: &ResponseView<'_>) -> Option<Value> {
        match self {
            ResponsePath::Status => view.status.map(|s| Value::from(s as u64)),
            ResponsePath::Body => Some(Value::String(view.body_text.to_string())),
            ResponsePath::Error => view.error.map(|e| Value::String(e.to_string())),
            ResponsePath::Header(name) => view
                .headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| Value::String(value.clone())),
            ResponsePath::Json { query, many, .. } => {
                let json = view.json?;
                let found = jsonpath_rust::query::js_path_process(query, json).ok()?;
                if *many {
                    let items: Vec<Value> = found.into_iter().map(|r| r.val().clone()).collect();
                    Some(Value::Array(items))
                } else {
                    let first = found.into_iter().next()?.val();
                    (!first.is_null()).then(|| first.clone())
                }
            }
        }
    }
}

/// True for paths that can select several values.
fn is_plural(path: &str) -> bool {
    if path.contains('*') || path.contains("..") || path.contains("?") {
        return true;
    }
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' | ',' if depth > 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(path: &str, body: &Value) -> Option<Value> {
        let path = ResponsePath::parse(path).expect("parses");
        path.read(&ResponseView {
            status: Some(200),
            headers: &[("X-Request-Id".into(), "abc".into())],
            body_text: "raw",
            json: Some(body),
            error: None,
        })
    }

    #[test]
    fn relative_and_full_paths_read_the_same_value() {
        let body = json!({"data": [{"Owner": {"name": "Ravi Kumar"}, "n": 0, "f": false, "e": "", "z": null}]});
        assert_eq!(read("data[0].Owner.name", &body), Some(json!("Ravi Kumar")));
        assert_eq!(
            read("$.data[0].Owner.name", &body),
            Some(json!("Ravi Kumar"))
        );
        assert_eq!(read("data[0].n", &body), Some(json!(0)));
        assert_eq!(read("data[0].f", &body), Some(json!(false)));
        assert_eq!(read("data[0].e", &body), Some(json!("")));
        assert_eq!(read("data[0].z", &body), None);
        assert_eq!(read("data[1].Owner.name", &body), None);
        assert_eq!(read("missing.key", &body), None);
    }

    #[test]
    fn wildcards_save_lists() {
        let body = json!({"data": [{"id": 1}, {"id": 2}]});
        assert_eq!(read("data[*].id", &body), Some(json!([1, 2])));
        assert_eq!(read("$.nothing[*]", &body), Some(json!([])));
    }

    #[test]
    fn specials_read_status_body_headers_and_error() {
        let body = json!({});
        assert_eq!(read("$status", &body), Some(json!(200)));
        assert_eq!(read("$body", &body), Some(json!("raw")));
        assert_eq!(read("$headers.x-request-id", &body), Some(json!("abc")));
        assert_eq!(read("$error", &body), None);
    }

    #[test]
    fn bad_paths_are_rejected_at_parse_time() {
        assert!(ResponsePath::parse("data[0.name").is_err());
        assert!(ResponsePath::parse("").is_err());
        assert!(ResponsePath::parse("$headers.").is_err());
    }

    #[test]
    fn record_field_names_the_zoho_field() {
        let field = |p: &str| ResponsePath::parse(p).expect("parses").record_field();
        assert_eq!(field("data[0].Owner.name"), Some("Owner".into()));
        assert_eq!(field("$.data[0].First_Name"), Some("First_Name".into()));
        assert_eq!(field("info.count"), None);
    }
}
