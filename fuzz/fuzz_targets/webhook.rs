//! The webhook parser over arbitrary bytes: it must return `Ok` or `Err`, never panic, and whatever
//! it accepts must describe only messages with an id (the server keys dedupe on it).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(notification) = flowbot_whatsapp::webhook::parse_notification(data) {
        for message in &notification.messages {
            // Every accessor the server uses must work on whatever was accepted.
            let _ = message.type_name();
        }
    }
});
