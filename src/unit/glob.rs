//! Go's `path.Match` glob syntax, which fleet uses for `Conflicts=` (and we for `Replaces=`).
//!
//! Architecture invariant: a [`Glob`] is validated when built, so matching never fails;
//! a malformed pattern is an error up front (Go only notices some of them while matching).

use std::fmt;

/// One compiled element of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    AnyOne,
    /// `[...]`: one character in (or, negated, not in) these inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A validated Go `path.Match` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl Glob {
    /// Compiles `pattern`, or says why it is malformed (Go's `ErrBadPattern` cases).
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    // Consecutive stars mean the same as one.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::AnyOne),
                '\\' => match chars.next() {
                    Some(escaped) => tokens.push(Token::Literal(escaped)),
                    None => return Err(bad(pattern, "ends with an unfinished escape '\\'")),
                },
                '[' => {
                    let negated = chars.peek() == Some(&'^');
                    if negated {
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    loop {
                        let lo = match chars.next() {
                            None => return Err(bad(pattern, "has an unclosed '['")),
                            Some(']') if !ranges.is_empty() => break,
                            Some(']') => {
                                return Err(bad(pattern, "has an empty character class '[]'"))
                            }
                            Some('\\') => chars.next().ok_or_else(|| {
                                bad(pattern, "ends with an unfinished escape '\\'")
                            })?,
                            Some('-') => {
                                return Err(bad(pattern, "has a range with no start in '[...]'"))
                            }
                            Some(other) => other,
                        };
                        let mut hi = lo;
                        if chars.peek() == Some(&'-') {
                            chars.next();
                            hi = match chars.next() {
                                None => return Err(bad(pattern, "has an unclosed '['")),
                                Some(']') | Some('-') => {
                                    return Err(bad(pattern, "has a range with no end in '[...]'"))
                                }
                                Some('\\') => chars.next().ok_or_else(|| {
                                    bad(pattern, "ends with an unfinished escape '\\'")
                                })?,
                                Some(other) => other,
                            };
                            if hi < lo {
                                return Err(bad(pattern, "has a reversed range in '[...]'"));
                            }
                        }
                        ranges.push((lo, hi));
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                other => tokens.push(Token::Literal(other)),
            }
        }
        Ok(Glob {
            pattern: pattern.to_string(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `name` matches (as Go's `path.Match(pattern, name)`).
    pub fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        matches_from(&self.tokens, &text)
    }
}

fn bad(pattern: &str, why: &str) -> String {
    format!("bad glob pattern {pattern:?}: it {why}")
}

/// Iterative matcher with single-star backtracking: linear in practice, never recursive.
fn matches_from(tokens: &[Token], text: &[char]) -> bool {
    let (mut t, mut s) = (0usize, 0usize);
    // Where the last star was and how much text it has swallowed so far.
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        if t < tokens.len() {
            match &tokens[t] {
                Token::Star => {
                    backtrack = Some((t, s));
                    t += 1;
                    continue;
                }
                token if s < text.len() && token_matches(token, text[s]) => {
                    t += 1;
                    s += 1;
                    continue;
                }
                _ => {}
            }
        } else if s == text.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more character, unless that is a '/'.
        match backtrack {
            Some((star_t, star_s)) if star_s < text.len() && text[star_s] != '/' => {
                backtrack = Some((star_t, star_s + 1));
                t = star_t + 1;
                s = star_s + 1;
            }
            _ => return false,
        }
    }
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyOne => c != '/',
        Token::Class { negated, ranges } => {
            let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
            inside != *negated && c != '/'
        }
        Token::Star => unreachable!("stars are handled by the matcher loop"),
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(pattern: &str, name: &str) -> bool {
        Glob::new(pattern).expect("valid pattern").matches(name)
    }

    #[test]
    fn go_path_match_cases() {
        // Cases from Go's path/match_test.go.
        assert!(m("abc", "abc"));
        assert!(m("*", "abc"));
        assert!(m("*c", "abc"));
        assert!(!m("a*", "ab/c"));
        assert!(m("a*/b", "abc/b"));
        assert!(!m("a*/b", "a/c/b"));
        assert!(m("a*b*c*d*e*/f", "axbxcxdxe/f"));
        assert!(m("a*b*c*d*e*/f", "axbxcxdxexxx/f"));
        assert!(!m("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"));
        assert!(!m("a*b*c*d*e*/f", "axbxcxdxexxx/fff"));
        assert!(m("a*b?c*x", "abxbbxdbxebxczzx"));
        assert!(!m("a*b?c*x", "abxbbxdbxebxczzy"));
        assert!(m("ab[c]", "abc"));
        assert!(m("ab[b-d]", "abc"));
        assert!(!m("ab[e-g]", "abc"));
        assert!(!m("ab[^c]", "abc"));
        assert!(!m("ab[^b-d]", "abc"));
        assert!(m("ab[^e-g]", "abc"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "ab"));
        assert!(m("a?b", "a☺b"));
        assert!(m("a[^a]b", "a☺b"));
        assert!(!m("a???b", "a☺b"));
        assert!(m("[\\-]", "-"));
        assert!(m("[x\\-]", "x"));
        assert!(m("[x\\-]", "-"));
        assert!(!m("[x\\-]", "z"));
        assert!(m("[\\-x]", "-"));
        assert!(m("*x", "xxx"));
    }

    #[test]
    fn fleet_unit_globs() {
        assert!(m("common@*.service", "common@1.service"));
        assert!(m("common@*.service", "common@.service"));
        assert!(!m("common@*.service", "common.service"));
        assert!(m("example_02.service", "example_02.service"));
        assert!(!m("example_02.service", "example_03.service"));
    }

    #[test]
    fn malformed_patterns_are_rejected_with_a_reason() {
        for bad in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[z-a]", "a\\",
        ] {
            let err = Glob::new(bad).expect_err(bad);
            assert!(err.contains("bad glob pattern"), "{bad}: {err}");
        }
    }
}
