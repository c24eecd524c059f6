//! The flow loader over arbitrary text: a diagnostic or a flow, never a panic. When a flow loads,
//! its Mermaid graph must render too (`flowbot graph` runs on any flow that validates).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = flowbot_flow::load_flow("fuzz.yaml", source);
    for diagnostic in &loaded.diagnostics {
        let _ = diagnostic.to_string();
    }
    if let Some(flow) = &loaded.flow {
        let _ = flowbot_flow::mermaid::to_mermaid(flow);
    }
});
