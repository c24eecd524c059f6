//! `flowbot-bench startup`: time from start to the first 200 from `/readyz` with many small flows
//! (1,000 by default, each with its own keyword and a few steps), against one flow. Each start-up
//! gets a fresh database (so migrations run each time, as on a first start). In this process the
//! clock starts at `Server::build`; with `--server-bin` also `flowbot serve` as a child process,
//! from spawning it (so the process start and flow loading are included).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::fakes::BenchGraph;
use crate::target::{Target, TargetOptions};

/// Flow files: (file name, YAML text).
type FlowFiles = Vec<(String, String)>;

pub async fn run(flows: usize, server_bin: Option<PathBuf>, repeat: usize) -> Result<ExitCode> {
    let graph = BenchGraph::start(0, Duration::ZERO, Instant::now()).await?;
    let many = generate(flows);
    let one = generate(1);
    println!("flowbot-bench startup: start to the first 200 from /readyz, median (worst) of {repeat}, fresh database each time");
    let mut line = serde_json::Map::new();
    let mut cases: Vec<(&str, &FlowFiles, Option<&PathBuf>)> = vec![
        ("in-process, 1 flow", &one, None),
        ("in-process, many flows", &many, None),
    ];
    if let Some(bin) = &server_bin {
        cases.push(("flowbot serve, 1 flow", &one, Some(bin)));
        cases.push(("flowbot serve, many flows", &many, Some(bin)));
    }
    for (name, files, bin) in cases {
        let mut times = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let target = Target::start(TargetOptions {
                flows: files.clone(),
                graph_url: &graph.url,
                zoho_url: None,
                workers: 0,
                queue_capacity: None,
                server_bin: bin.map(PathBuf::as_path),
            })
            .await?;
            times.push(target.startup);
            target.stop().await?;
        }
        times.sort();
        let median = times[times.len() / 2].as_secs_f64() * 1e3;
        let worst = times[times.len() - 1].as_secs_f64() * 1e3;
        let label = name.replace("many", &files.len().to_string());
        println!(
            "  {label:<32} {median:>8.1} ms ({worst:.1} ms)   target <= 100 ms with 1,000 flows"
        );
        line.insert(label, json!({ "median_ms": median, "worst_ms": worst }));
    }
    println!("{}", json!({ "startup": line }));
    Ok(ExitCode::SUCCESS)
}

/// `count` small flows: a keyword each, a question with buttons, a branch, an end.
fn generate(count: usize) -> FlowFiles {
    (0..count)
        .map(|k| {
            let text = format!(
                r#"flow: flow_{k}
description: Generated flow {k} for the start-up benchmark.
triggers:
  keywords: [start{k}]
steps:
  - id: welcome
    say: "Hello {{{{contact.name}}}}, this is flow {k}."
  - id: pick
    ask:
      text: "Do you want the status of order {k}?"
      buttons: [Yes, No]
    save: choice
  - id: route
    branch:
      - when: {{ var: choice, equals: "yes" }}
        goto: status
    else: bye
  - id: status
    end: "Order {k} is on its way, {{{{default contact.name \"friend\"}}}}."
  - id: bye
    end: "Bye!"
"#
            );
            (format!("flow_{k:04}.yaml"), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_flows_load_together_without_errors() {
        let sources: Vec<flowbot_flow::FlowSource> = generate(3)
            .into_iter()
            .map(|(file, text)| flowbot_flow::FlowSource { file, text })
            .collect();
        let (set, diagnostics) = flowbot_flow::FlowSet::load(&sources);
        let errors: Vec<_> = diagnostics
            .iter()
            .filter(|d| d.severity == flowbot_flow::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.flows().len(), 3);
    }
}
