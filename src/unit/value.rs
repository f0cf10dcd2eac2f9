//! systemd's value syntax as `[X-Fleet]` reads it: booleans and quoted word lists.

/// systemd's `parse_boolean`, which fleet's `Global` only partly followed.
pub fn parse_boolean(word: &str) -> Option<bool> {
    match word.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// Splits a value into words.
///
/// A value that starts with a quote (`"` or `'`) is a list of words separated by
/// whitespace, each quoted part kept whole with its quotes removed, as systemd reads
/// lists and as fleet read `MachineOf="a.service" "b.service"`. Any other value is one
/// word, unless `split_unquoted` (`Conflicts`, `Replaces`): then it is split on
/// whitespace, quotes still honoured. Backslashes are kept as written: they escape glob
/// characters in `Conflicts`, and fleet never unescaped them.
pub fn split_words(value: &str, split_unquoted: bool) -> Result<Vec<String>, String> {
    if !split_unquoted && !value.starts_with(['"', '\'']) {
        return Ok(vec![value.to_string()]);
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in value.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unbalanced quote {q:?}; expected a closing {q:?}"));
    }
    if in_word {
        words.push(word);
    }
    // A quoted empty word (`""`) names nothing; say so rather than look for "".
    if words.iter().any(|w| w.is_empty()) {
        return Err("empty quoted value \"\"".to_string());
    }
    Ok(words)
}
