//! Splitting a rendered text that is longer than WhatsApp allows into several messages, at a line
//! or word boundary where there is one, and never inside a character.

/// Splits `text` into parts of at most `limit` characters.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.chars().count() > limit {
        // Byte offset just after the `limit`-th character.
        let hard = rest
            .char_indices()
            .nth(limit)
            .map_or(rest.len(), |(i, _)| i);
        let window = &rest[..hard];
        let cut = window
            .rfind('\n')
            .filter(|i| *i > 0)
            .or_else(|| window.rfind(' ').filter(|i| *i > 0))
            .unwrap_or(hard);
        parts.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start_matches(['\n', ' ']);
    }
    parts.push(rest.to_string());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_text("hello", 10), vec!["hello"]);
    }

    #[test]
    fn long_text_splits_at_lines_then_words_then_characters() {
        assert_eq!(split_text("aaaa\nbbbb cc", 8), vec!["aaaa", "bbbb cc"]);
        assert_eq!(split_text("aaa bbb ccc", 8), vec!["aaa bbb", "ccc"]);
        assert_eq!(split_text("ééééé", 2), vec!["éé", "éé", "é"]);
        let emoji = "😀".repeat(5000);
        let parts = split_text(&emoji, 4096);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.chars().count() <= 4096));
        assert_eq!(parts.concat(), emoji);
    }
}
