//! The template compiler and renderer: an arbitrary template text rendered over arbitrary
//! variables, for message text and for URL components. Compiling may fail; rendering must not
//! panic. Two properties are checked on every input:
//! - a value is data: `{{v}}` over any string renders exactly that string (no `{{...}}` inside it
//!   is evaluated, nothing is HTML-escaped);
//! - URL escaping leaves only RFC 3986 unreserved characters and `%XX` in the inserted value.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use flowbot_flow::{Escape, Template};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

#[derive(Debug)]
struct Input {
    template: String,
    vars: Value,
    value: String,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Input {
            template: u.arbitrary()?,
            value: u.arbitrary()?,
            vars: object(u, 0)?,
        })
    }
}

/// Variables as flows see them: names templates are likely to use, values of every JSON type.
fn object(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    const NAMES: &[&str] = &[
        "name", "contact", "message", "text", "phone", "items", "this", "secrets", "x", "a", "b",
    ];
    let mut map = Map::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let name = if u.arbitrary()? {
            (*u.choose(NAMES)?).to_owned()
        } else {
            u.arbitrary::<String>()?
        };
        map.insert(name, value(u, depth + 1)?);
    }
    Ok(Value::Object(map))
}

fn value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let leaf_only = depth > 4;
    Ok(match u.int_in_range(0..=if leaf_only { 3 } else { 5 })? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        3 => Value::String(u.arbitrary()?),
        4 => {
            let mut items = Vec::new();
            for _ in 0..u.int_in_range(0..=4)? {
                items.push(value(u, depth + 1)?);
            }
            Value::Array(items)
        }
        _ => object(u, depth)?,
    })
}

fuzz_target!(|input: Input| {
    if let Ok(template) = Template::parse(&input.template) {
        let _ = template.render(&input.vars);
        let _ = template.render_escaped(&input.vars, Escape::UrlComponent);
        let _ = template.variables();
    }

    let vars = serde_json::json!({ "v": input.value });
    let Ok(single) = Template::parse("{{v}}") else {
        panic!("{{v}} always compiles");
    };
    assert_eq!(single.render(&vars), input.value, "a value is inserted as it is");
    let encoded = single.render_escaped(&vars, Escape::UrlComponent);
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
        "URL-escaped value {encoded:?}"
    );
    let Ok(block) = Template::parse("[{{#if v}}{{upper v}}{{/if}}]") else {
        panic!("the block template always compiles");
    };
    let rendered = block.render(&vars);
    assert!(rendered.starts_with('[') && rendered.ends_with(']'));
});
