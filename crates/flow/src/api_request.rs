//! Compiling the External API Request step (`api_request:`): method, URL with its trust rules,
//! auth, headers, query, body, response kind, limits and retries.
//!
//! The URL rule: customer data may only land in the path and query. A placeholder in the scheme or
//! host is an error, unless the URL starts with one whole trusted value (`{{secrets.shop_base}}`,
//! `{{vars.base}}` or a flow `vars:` entry), which is inserted as-is.

use std::time::Duration;

use crate::compile::{CompileContext, DEFAULT_MAX_RESPONSE, DEFAULT_TIMEOUT, MAX_TIMEOUT};
use crate::flow::*;
use crate::model::{ApiRequestDef, AuthDef, AuthKindDef, BodyDef, BodyKindDef, StepDef};
use crate::path::ResponsePath;
use crate::template::{Escape, Template};

pub(crate) fn compile(
    ctx: &mut impl CompileContext,
    path: &str,
    def: &ApiRequestDef,
    step_path: &str,
    step: &StepDef,
) -> ApiRequest {
    let method = match def
        .method
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("PATCH") => Method::Patch,
        Some("DELETE") => Method::Delete,
        Some(other) => {
            ctx.ctx_value_error(
                &format!("{path}/method"),
                format!("unknown method `{other}`"),
                Some("one of GET, POST, PUT, PATCH, DELETE".into()),
            );
            Method::Get
        }
    };
    let url = url_template(ctx, &format!("{path}/url"), def.url.trim());
    let auth = auth(ctx, &format!("{path}/auth"), def.auth.as_ref());
    let mut headers = Vec::new();
    for (name, value) in &def.headers {
        let header_path = format!("{path}/headers/{name}");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            ctx.ctx_error(
                &header_path,
                format!("`{name}` is not a valid header name"),
                None,
            );
        }
        headers.push((name.clone(), ctx.ctx_template(&header_path, value)));
    }
    let query = def
        .query
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                ctx.ctx_template(&format!("{path}/query/{name}"), value),
            )
        })
        .collect();
    let body = match &def.body {
        None => Body::None,
        Some(BodyDef::Keyword(word)) if word == "none" => Body::None,
        Some(BodyDef::Keyword(word)) => {
            ctx.ctx_value_error(
                &format!("{path}/body"),
                format!("unknown body `{word}`"),
                Some(
                    "none | { json: ... } | { form: { k: v } } | { raw: { content_type, text } }"
                        .into(),
                ),
            );
            Body::None
        }
        Some(BodyDef::Kind(BodyKindDef::Json(value))) => {
            Body::Json(ctx.ctx_value_template(&format!("{path}/body/json"), value))
        }
        Some(BodyDef::Kind(BodyKindDef::Form(fields))) => Body::Form(
            fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        ctx.ctx_template(&format!("{path}/body/form/{k}"), v),
                    )
                })
                .collect(),
        ),
        Some(BodyDef::Kind(BodyKindDef::Raw { content_type, text })) => Body::Raw {
            content_type: content_type.clone(),
            text: ctx.ctx_template(&format!("{path}/body/raw/text"), text),
        },
    };
    let response = match def.response.as_deref() {
        None | Some("json") => ResponseKind::Json,
        Some("text") => ResponseKind::Text,
        Some(other) => {
            ctx.ctx_value_error(
                &format!("{path}/response"),
                format!("unknown response `{other}`"),
                Some("json or text".into()),
            );
            ResponseKind::Json
        }
    };
    let timeout = match &def.timeout {
        None => DEFAULT_TIMEOUT,
        Some(text) => match ctx.ctx_duration(&format!("{path}/timeout"), text) {
            Some(t) if t > MAX_TIMEOUT => {
                ctx.ctx_value_error(
                    &format!("{path}/timeout"),
                    format!("timeout {text} is above the maximum of 60s"),
                    Some("a chat customer should not wait longer; use at most 60s".into()),
                );
                MAX_TIMEOUT
            }
            Some(t) => t,
            None => DEFAULT_TIMEOUT,
        },
    };
    let max_response = match &def.max_response {
        None => DEFAULT_MAX_RESPONSE,
        Some(text) => parse_size(text).unwrap_or_else(|| {
            ctx.ctx_value_error(
                &format!("{path}/max_response"),
                format!("`{text}` is not a size"),
                Some("write it like 64KiB, 1MiB or 500000".into()),
            );
            DEFAULT_MAX_RESPONSE
        }),
    };
    let (retry_attempts, retry_backoff) = match &def.retry {
        None => (0, Duration::from_millis(500)),
        Some(retry) => {
            if retry.attempts > 5 {
                ctx.ctx_error(
                    &format!("{path}/retry/attempts"),
                    "at most 5 retries".into(),
                    Some("a customer is waiting; keep retries few".into()),
                );
            }
            let backoff = retry
                .backoff
                .as_deref()
                .and_then(|b| ctx.ctx_duration(&format!("{path}/retry/backoff"), b))
                .unwrap_or(Duration::from_millis(500));
            if backoff > Duration::from_secs(30) {
                ctx.ctx_value_error(
                    &format!("{path}/retry/backoff"),
                    "a retry backoff above 30s".into(),
                    Some("a customer is waiting for the answer; use at most 30s".into()),
                );
            }
            (retry.attempts.min(5), backoff)
        }
    };
    if retry_attempts > 0 && !method.is_idempotent() && !def.retry_unsafe {
        ctx.ctx_warning(
            &format!("{path}/retry"),
            format!("{} requests are not retried unless `retry_unsafe: true`", method.as_str()),
            Some("a retried POST may create the record twice; set retry_unsafe: true if the API is idempotent".into()),
        );
    }
    let save = ctx.ctx_save(step_path, step);
    if response == ResponseKind::Text {
        for (name, response_path) in &save {
            if matches!(response_path, ResponsePath::Json { .. }) {
                ctx.ctx_error(
                    &format!("{step_path}/save/{name}"),
                    "a JSON path needs `response: json`".into(),
                    Some("with response: text, save $body, $status or $headers.NAME".into()),
                );
            }
        }
    }
    let bearer_to_zoho = def.url.contains("zohoapis")
        && (matches!(def.auth, Some(AuthDef::Kind(AuthKindDef::Bearer(_))))
            || def.headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("authorization")
                    && v.trim_start().to_ascii_lowercase().starts_with("bearer")
            }));
    if bearer_to_zoho {
        ctx.ctx_warning(
            &format!("{path}/url"),
            "Zoho's API wants `Authorization: Zoho-oauthtoken TOKEN`, not Bearer".into(),
            Some("better, use a `zoho_search` step: it keeps its tokens fresh".into()),
        );
    }
    let outcomes = ctx.ctx_outcomes(step_path, step);
    ApiRequest {
        method,
        url,
        auth,
        headers,
        query,
        body,
        response,
        timeout,
        max_response,
        retry_attempts,
        retry_backoff,
        retry_unsafe: def.retry_unsafe,
        save,
        outcomes,
    }
}

fn url_template(ctx: &mut impl CompileContext, path: &str, source: &str) -> UrlTemplate {
    let mut base = None;
    let mut rest = source;
    if let Some(inner) = source.strip_prefix("{{") {
        let inner = inner.trim_start_matches('{');
        if let Some(end) = inner.find("}}") {
            let name = inner[..end].trim();
            let root = name.split('.').next().unwrap_or(name);
            if root == "secrets" || root == "vars" {
                base = Some(name.to_string());
                rest = inner[end..].trim_start_matches('}');
            } else if ctx.ctx_is_flow_var(root) {
                // The author's value, read from `vars.` at run time: a `set` or `save` of the same
                // name (customer or API data) must never become the host.
                base = Some(format!("vars.{name}"));
                rest = inner[end..].trim_start_matches('}');
            } else {
                ctx.ctx_value_error(
                    path,
                    format!("the URL's scheme and host come from `{{{{{name}}}}}`, which may hold customer data"),
                    Some("only path and query take values; a whole base URL may come from {{secrets.NAME}} or a flow var".into()),
                );
            }
        }
    } else if !(source.starts_with("http://") || source.starts_with("https://")) {
        ctx.ctx_value_error(
            path,
            format!("`{source}` is not an http(s) URL"),
            Some("write https://host/path?query".into()),
        );
    } else {
        let after_scheme = &source[source.find("://").map_or(0, |i| i + 3)..];
        let authority_end = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        if after_scheme[..authority_end].contains("{{") {
            ctx.ctx_value_error(
                path,
                "a placeholder in the URL's host: only path and query take values".into(),
                Some(
                    "put the whole base URL in a secret: url: \"{{secrets.api_base}}/orders\""
                        .into(),
                ),
            );
        }
    }
    if base.is_some() && !(rest.is_empty() || rest.starts_with(['/', '?', '#'])) {
        // Anything else would extend the host or port: `.evil.example`, `0` after `:80`.
        ctx.ctx_value_error(
            path,
            "after a whole base URL, the URL must go on with `/`, `?` or `#`".into(),
            Some("write url: \"{{secrets.api_base}}/orders/{{order_id}}\"".into()),
        );
    }
    let template = ctx.ctx_template(path, rest);
    // The URL must parse once its placeholders hold sample values.
    let sample_vars = serde_json::json!({});
    let mut sample = template.render_escaped(&sample_vars, Escape::UrlComponent);
    if base.is_some() {
        sample = format!("https://base.example{sample}");
    }
    match url::Url::parse(&sample) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
        _ => ctx.ctx_value_error(
            path,
            format!("`{source}` does not make a valid URL"),
            Some("for example https://api.example.com/v1/orders?phone={{contact.phone}}".into()),
        ),
    }
    UrlTemplate {
        base,
        rest: template,
    }
}

fn auth(ctx: &mut impl CompileContext, path: &str, def: Option<&AuthDef>) -> Auth {
    match def {
        None => Auth::None,
        Some(AuthDef::Keyword(word)) if word == "none" => Auth::None,
        Some(AuthDef::Keyword(word)) => {
            ctx.ctx_value_error(path, format!("unknown auth `{word}`"), Some("none | { bearer: T } | { basic: { user, password } } | { api_key: { header|query, value } }".into()));
            Auth::None
        }
        Some(AuthDef::Kind(AuthKindDef::Bearer(token))) => {
            Auth::Bearer(ctx.ctx_template(&format!("{path}/bearer"), token))
        }
        Some(AuthDef::Kind(AuthKindDef::Basic { user, password })) => Auth::Basic {
            user: ctx.ctx_template(&format!("{path}/basic/user"), user),
            password: ctx.ctx_template(&format!("{path}/basic/password"), password),
        },
        Some(AuthDef::Kind(AuthKindDef::ApiKey(key))) => {
            let value = ctx.ctx_template(&format!("{path}/api_key/value"), &key.value);
            match (&key.header, &key.query) {
                (Some(name), None) => Auth::ApiKeyHeader {
                    name: name.clone(),
                    value,
                },
                (None, Some(name)) => Auth::ApiKeyQuery {
                    name: name.clone(),
                    value,
                },
                _ => {
                    ctx.ctx_error(
                        &format!("{path}/api_key"),
                        "an api_key goes in a `header` or a `query` parameter: name exactly one"
                            .into(),
                        Some(
                            "{ api_key: { header: X-Api-Key, value: \"{{secrets.key}}\" } }".into(),
                        ),
                    );
                    Auth::None
                }
            }
        }
    }
}

/// `1MiB`, `64KiB`, `500KB`, `1000` (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..split].parse().ok()?;
    let unit = text[split..].trim().to_ascii_lowercase();
    let factor = match unit.as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1024,
        "mb" => 1_000_000,
        "mib" => 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(factor).filter(|n| *n > 0)
}

/// Every template of the step (for validation of variables and the graph).
pub fn templates(request: &ApiRequest) -> Vec<&Template> {
    let mut all = vec![&request.url.rest];
    match &request.auth {
        Auth::None => {}
        Auth::Bearer(t) => all.push(t),
        Auth::Basic { user, password } => all.extend([user, password]),
        Auth::ApiKeyHeader { value, .. } | Auth::ApiKeyQuery { value, .. } => all.push(value),
    }
    all.extend(request.headers.iter().map(|(_, t)| t));
    all.extend(request.query.iter().map(|(_, t)| t));
    match &request.body {
        Body::Form(fields) => all.extend(fields.iter().map(|(_, t)| t)),
        Body::Raw { text, .. } => all.push(text),
        Body::None | Body::Json(_) => {}
    }
    all
}
