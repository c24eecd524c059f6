//! `flowbot test [PATH...]`: replays conversation files, prints each as passed or failed with a
//! readable diff, ends with `N passed, N failed`, exits 1 on any failure.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use flowbot_replay::{find_replay_files, run_replay_file};

pub async fn run(paths: &[PathBuf]) -> Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("tests/conversations")]
    } else {
        paths.to_vec()
    };
    for path in &paths {
        if !path.exists() {
            anyhow::bail!("{} does not exist", path.display());
        }
    }
    let files = find_replay_files(&paths)?;
    if files.is_empty() {
        anyhow::bail!(
            "no replay files (*.yaml) found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let outcome = run_replay_file(&file).await;
        if outcome.passed() {
            passed += 1;
            println!("passed  {} ({})", outcome.name, file.display());
        } else {
            failed += 1;
            println!("FAILED  {} ({})", outcome.name, file.display());
            for failure in &outcome.failures {
                for line in failure.lines() {
                    println!("    {line}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
