//! Conditions of `branch` steps: how they are written, compiled at load, and evaluated.
//!
//! A condition names a variable and one operator (`{ var: reply, equals: CALLBACK, ignore_case: true }`),
//! or combines others with `all`, `any` and `not`. Regexes are compiled at load (the `regex` crate
//! matches in linear time), string operands may be templates (`equals: "{{expected}}"`). Evaluation
//! never fails: a value that is not a number simply does not satisfy `gt`. The comparison table is
//! documented in the README ("Conditions").

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::template::{lookup, value_to_text, Template};

/// A condition as written in YAML.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    /// The variable tested, e.g. `reply` or `message.text`.
    pub var: Option<String>,
    pub equals: Option<Value>,
    pub not_equals: Option<Value>,
    pub contains: Option<Value>,
    pub not_contains: Option<Value>,
    pub starts_with: Option<Value>,
    pub ends_with: Option<Value>,
    /// A regular expression (Rust `regex` syntax; linear-time matching).
    pub matches: Option<String>,
    /// `true`: missing, null, "", whitespace only, [] or {}. `false`: the opposite.
    pub empty: Option<bool>,
    pub not_empty: Option<bool>,
    /// `true`: the variable is set (not missing, not null).
    pub exists: Option<bool>,
    pub gt: Option<Value>,
    pub gte: Option<Value>,
    pub lt: Option<Value>,
    pub lte: Option<Value>,
    #[serde(rename = "in")]
    pub in_list: Option<Vec<Value>>,
    pub not_in: Option<Vec<Value>>,
    /// Text comparisons ignore case.
    pub ignore_case: Option<bool>,
    pub all: Option<Vec<ConditionDef>>,
    pub any: Option<Vec<ConditionDef>>,
    pub not: Option<Box<ConditionDef>>,
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test {
        var: String,
        test: Test,
        ignore_case: bool,
    },
}

/// One operator with its compiled operand.
#[derive(Clone, Debug)]
pub enum Test {
    Equals(Operand),
    NotEquals(Operand),
    Contains(Operand),
    NotContains(Operand),
    StartsWith(Operand),
    EndsWith(Operand),
    Matches(Box<Regex>),
    Empty(bool),
    Exists(bool),
    Greater(Operand),
    GreaterOrEqual(Operand),
    Less(Operand),
    LessOrEqual(Operand),
    In(Vec<Operand>),
    NotIn(Vec<Operand>),
}

/// A comparison operand: a literal, or a template rendered against the variables.
#[derive(Clone, Debug)]
pub enum Operand {
    Literal(Value),
    Template(Template),
}

/// The operator names, for messages and the README.
pub const OPERATORS: &[&str] = &[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "matches",
    "empty",
    "not_empty",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
];

impl ConditionDef {
    /// Compiles the condition; the error says what is wrong and how to write it.
    pub fn compile(&self) -> Result<Condition, String> {
        let combinators = [self.all.is_some(), self.any.is_some(), self.not.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if combinators > 0 {
            if combinators > 1 || self.var.is_some() || self.operator_count() > 0 {
                return Err(
                    "write `all`, `any` or `not` alone in a condition, and put tests inside".into(),
                );
            }
            if let Some(list) = &self.all {
                return Ok(Condition::All(compile_list(list, "all")?));
            }
            if let Some(list) = &self.any {
                return Ok(Condition::Any(compile_list(list, "any")?));
            }
            if let Some(inner) = &self.not {
                return Ok(Condition::Not(Box::new(inner.compile()?)));
            }
        }
        let Some(var) = self.var.clone() else {
            return Err(
                "a condition needs `var:` (the variable tested), e.g. { var: reply, equals: yes }"
                    .into(),
            );
        };
        if self.operator_count() != 1 {
            return Err(format!(
                "a condition needs exactly one operator, one of: {}",
                OPERATORS.join(", ")
            ));
        }
        let ignore_case = self.ignore_case.unwrap_or(false);
        let test = self.compile_test(ignore_case)?;
        Ok(Condition::Test {
            var,
            test,
            ignore_case,
        })
    }

    fn operator_count(&self) -> usize {
        [
            self.equals.is_some(),
            self.not_equals.is_some(),
            self.contains.is_some(),
            self.not_contains.is_some(),
            self.starts_with.is_some(),
            self.ends_with.is_some(),
            self.matches.is_some(),
            self.empty.is_some(),
            self.not_empty.is_some(),
            self.exists.is_some(),
            self.gt.is_some(),
            self.gte.is_some(),
            self.lt.is_some(),
            self.lte.is_some(),
            self.in_list.is_some(),
            self.not_in.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count()
    }

    fn compile_test(&self, ignore_case: bool) -> Result<Test, String> {
        let operand = |v: &Value| operand(v);
        Ok(if let Some(v) = &self.equals {
            Test::Equals(operand(v)?)
        } else if let Some(v) = &self.not_equals {
            Test::NotEquals(operand(v)?)
        } else if let Some(v) = &self.contains {
            Test::Contains(operand(v)?)
        } else if let Some(v) = &self.not_contains {
            Test::NotContains(operand(v)?)
        } else if let Some(v) = &self.starts_with {
            Test::StartsWith(operand(v)?)
        } else if let Some(v) = &self.ends_with {
            Test::EndsWith(operand(v)?)
        } else if let Some(pattern) = &self.matches {
            let regex = regex::RegexBuilder::new(pattern)
                .case_insensitive(ignore_case)
                .size_limit(1 << 20)
                .build()
                .map_err(|error| format!("invalid regex `{pattern}`: {error}"))?;
            Test::Matches(Box::new(regex))
        } else if let Some(flag) = self.empty {
            Test::Empty(flag)
        } else if let Some(flag) = self.not_empty {
            Test::Empty(!flag)
        } else if let Some(flag) = self.exists {
            Test::Exists(flag)
        } else if let Some(v) = &self.gt {
            Test::Greater(number_operand(v, "gt")?)
        } else if let Some(v) = &self.gte {
            Test::GreaterOrEqual(number_operand(v, "gte")?)
        } else if let Some(v) = &self.lt {
            Test::Less(number_operand(v, "lt")?)
        } else if let Some(v) = &self.lte {
            Test::LessOrEqual(number_operand(v, "lte")?)
        } else if let Some(list) = &self.in_list {
            Test::In(list.iter().map(operand).collect::<Result<_, _>>()?)
        } else if let Some(list) = &self.not_in {
            Test::NotIn(list.iter().map(operand).collect::<Result<_, _>>()?)
        } else {
            return Err("a condition needs an operator".into());
        })
    }
}

fn compile_list(list: &[ConditionDef], name: &str) -> Result<Vec<Condition>, String> {
    if list.is_empty() {
        return Err(format!("`{name}` needs at least one condition"));
    }
    list.iter().map(ConditionDef::compile).collect()
}

fn operand(value: &Value) -> Result<Operand, String> {
    match value {
        Value::String(text) if text.contains("{{") => Template::parse(text)
            .map(Operand::Template)
            .map_err(|error| error.message),
        Value::Array(_) | Value::Object(_) => Err(
            "compare with a single value (a text, number or boolean); use `in` for lists".into(),
        ),
        other => Ok(Operand::Literal(other.clone())),
    }
}

fn number_operand(value: &Value, name: &str) -> Result<Operand, String> {
    let compiled = operand(value)?;
    if let Operand::Literal(literal) = &compiled {
        if as_number(literal).is_none() {
            return Err(format!(
                "`{name}` compares numbers; `{literal}` is not a number"
            ));
        }
    }
    Ok(compiled)
}

impl Condition {
    /// Evaluates the condition over the conversation's variables.
    pub fn evaluate(&self, vars: &Value) -> bool {
        match self {
            Condition::All(list) => list.iter().all(|c| c.evaluate(vars)),
            Condition::Any(list) => list.iter().any(|c| c.evaluate(vars)),
            Condition::Not(inner) => !inner.evaluate(vars),
            Condition::Test {
                var,
                test,
                ignore_case,
            } => test.evaluate(lookup(vars, var), vars, *ignore_case),
        }
    }

    /// Every variable the condition reads (for validation and the graph).
    pub fn variables(&self) -> Vec<&str> {
        match self {
            Condition::All(list) | Condition::Any(list) => {
                list.iter().flat_map(|c| c.variables()).collect()
            }
            Condition::Not(inner) => inner.variables(),
            Condition::Test { var, test, .. } => {
                let mut names = vec![var.as_str()];
                names.extend(test.operand_variables());
                names
            }
        }
    }

    /// A short human description, e.g. `reply equals "CALLBACK"`.
    pub fn describe(&self) -> String {
        match self {
            Condition::All(list) => join(list, " and "),
            Condition::Any(list) => join(list, " or "),
            Condition::Not(inner) => format!("not ({})", inner.describe()),
            Condition::Test { var, test, .. } => format!("{var} {}", test.describe()),
        }
    }
}

fn join(list: &[Condition], separator: &str) -> String {
    list.iter()
        .map(|c| format!("({})", c.describe()))
        .collect::<Vec<_>>()
        .join(separator)
}

impl Test {
    fn evaluate(&self, value: Option<&Value>, vars: &Value, ignore_case: bool) -> bool {
        let text = || fold(value.map(value_to_text).unwrap_or_default(), ignore_case);
        let operand_text = |o: &Operand| fold(o.text(vars), ignore_case);
        match self {
            Test::Equals(o) => equals(value, o, vars, ignore_case),
            Test::NotEquals(o) => !equals(value, o, vars, ignore_case),
            Test::Contains(o) => contains(value, o, vars, ignore_case),
            Test::NotContains(o) => !contains(value, o, vars, ignore_case),
            Test::StartsWith(o) => text().starts_with(&operand_text(o)),
            Test::EndsWith(o) => text().ends_with(&operand_text(o)),
            Test::Matches(regex) => regex.is_match(&value.map(value_to_text).unwrap_or_default()),
            Test::Empty(flag) => is_empty(value) == *flag,
            Test::Exists(flag) => value.is_some_and(|v| !v.is_null()) == *flag,
            Test::Greater(o) => compare(value, o, vars).is_some_and(|o| o.is_gt()),
            Test::GreaterOrEqual(o) => compare(value, o, vars).is_some_and(|o| o.is_ge()),
            Test::Less(o) => compare(value, o, vars).is_some_and(|o| o.is_lt()),
            Test::LessOrEqual(o) => compare(value, o, vars).is_some_and(|o| o.is_le()),
            Test::In(list) => list.iter().any(|o| equals(value, o, vars, ignore_case)),
            Test::NotIn(list) => !list.iter().any(|o| equals(value, o, vars, ignore_case)),
        }
    }

    fn operand_variables(&self) -> Vec<&str> {
        fn from(o: &Operand) -> Vec<&str> {
            match o {
                Operand::Template(t) => t.variables(),
                Operand::Literal(_) => Vec::new(),
            }
        }
        match self {
            Test::Equals(o)
            | Test::NotEquals(o)
            | Test::Contains(o)
            | Test::NotContains(o)
            | Test::StartsWith(o)
            | Test::EndsWith(o)
            | Test::Greater(o)
            | Test::GreaterOrEqual(o)
            | Test::Less(o)
            | Test::LessOrEqual(o) => from(o),
            Test::In(list) | Test::NotIn(list) => list.iter().flat_map(from).collect(),
            Test::Matches(_) | Test::Empty(_) | Test::Exists(_) => Vec::new(),
        }
    }

    fn describe(&self) -> String {
        let o = |o: &Operand| match o {
            Operand::Literal(Value::String(s)) => format!("\"{s}\""),
            Operand::Literal(v) => v.to_string(),
            Operand::Template(t) => format!("\"{}\"", t.source()),
        };
        let list = |l: &[Operand]| l.iter().map(o).collect::<Vec<_>>().join(", ");
        match self {
            Test::Equals(x) => format!("equals {}", o(x)),
            Test::NotEquals(x) => format!("not equals {}", o(x)),
            Test::Contains(x) => format!("contains {}", o(x)),
            Test::NotContains(x) => format!("not contains {}", o(x)),
            Test::StartsWith(x) => format!("starts with {}", o(x)),
            Test::EndsWith(x) => format!("ends with {}", o(x)),
            Test::Matches(r) => format!("matches /{}/", r.as_str()),
            Test::Empty(true) => "is empty".into(),
            Test::Empty(false) => "is not empty".into(),
            Test::Exists(true) => "exists".into(),
            Test::Exists(false) => "does not exist".into(),
            Test::Greater(x) => format!("> {}", o(x)),
            Test::GreaterOrEqual(x) => format!(">= {}", o(x)),
            Test::Less(x) => format!("< {}", o(x)),
            Test::LessOrEqual(x) => format!("<= {}", o(x)),
            Test::In(l) => format!("in [{}]", list(l)),
            Test::NotIn(l) => format!("not in [{}]", list(l)),
        }
    }
}

impl Operand {
    fn value(&self, vars: &Value) -> Value {
        match self {
            Operand::Literal(value) => value.clone(),
            Operand::Template(template) => match template.single_variable() {
                Some(name) => lookup(vars, name).cloned().unwrap_or(Value::Null),
                None => Value::String(template.render(vars)),
            },
        }
    }

    fn text(&self, vars: &Value) -> String {
        match self {
            Operand::Literal(value) => value_to_text(value),
            Operand::Template(template) => template.render(vars),
        }
    }
}

fn fold(text: String, ignore_case: bool) -> String {
    if ignore_case {
        text.to_lowercase()
    } else {
        text
    }
}

/// Equality: a number operand compares numerically (`"10"` equals `10`, `"10.0"` too); any other
/// operand compares as text, trimmed of surrounding whitespace.
fn equals(value: Option<&Value>, operand: &Operand, vars: &Value, ignore_case: bool) -> bool {
    let expected = operand.value(vars);
    if let Value::Number(_) = expected {
        return match (value.and_then(as_number), as_number(&expected)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
    }
    let actual = fold(value.map(value_to_text).unwrap_or_default(), ignore_case);
    let expected = fold(value_to_text(&expected), ignore_case);
    actual.trim() == expected.trim()
}

/// `contains`: a list contains an element equal to the operand; text contains the operand's text.
fn contains(value: Option<&Value>, operand: &Operand, vars: &Value, ignore_case: bool) -> bool {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .any(|item| equals(Some(item), operand, vars, ignore_case)),
        other => {
            let needle = fold(operand.text(vars), ignore_case);
            fold(other.map(value_to_text).unwrap_or_default(), ignore_case).contains(&needle)
        }
    }
}

fn compare(value: Option<&Value>, operand: &Operand, vars: &Value) -> Option<std::cmp::Ordering> {
    let left = as_number(value?)?;
    let right = as_number(&operand.value(vars))?;
    left.partial_cmp(&right)
}

/// A number, or a string that holds one ("10", " 2.5 "); anything else is not a number.
pub fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// Missing, null, "", whitespace only, [] or {}. `0` and `false` are not empty.
pub fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.trim().is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(map)) => map.is_empty(),
        Some(_) => false,
    }
}
