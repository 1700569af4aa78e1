//! Text for a terminal. Names, messages and values come from manifests and
//! from the cloud; printed raw, an ANSI escape could recolour or erase the
//! report, a carriage return or newline could forge a line, and a bidi
//! control could reorder what the reader sees.

use std::borrow::Cow;

/// Characters that steer a terminal or the reading order rather than show.
fn steers(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every steering character written as a visible escape
/// (`\n`, `\u{1b}`); unchanged (and not copied) when there is none.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(steers) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if steers(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        assert!(matches!(safe("shop/orders-api  aws  ünïcode ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_newlines_ansi_and_bidi_controls() {
        assert_eq!(safe("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(safe("\u{1b}[2J\u{1b}]0;title\u{7}"), "\\u{1b}[2J\\u{1b}]0;title\\u{7}");
        assert_eq!(safe("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(safe("abc\u{202E}fed"), "abc\\u{202e}fed");
        assert!(!safe("\u{0}\u{7f}").chars().any(|c| c.is_control()));
    }
}
