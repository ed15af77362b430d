//! PostgreSQL's array literal text, `{a,"b c",NULL}`: how array values
//! travel in Eddy (results, parameters) and how they are read back.

/// The elements of a one-dimensional array literal (`NULL` as `None`,
/// quoted elements unquoted and unescaped), or of a vector as `int2vector`
/// prints it (`1 2`). None when `text` is not one: unbalanced quotes or
/// braces, or nested arrays.
pub fn parse(text: &str) -> Option<Vec<Option<String>>> {
    let text = text.trim();
    let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
        // A vector: elements between spaces, never quoted.
        if text.contains(['{', '}', '"']) {
            return None;
        }
        return Some(
            text.split_whitespace()
                .map(|e| Some(e.to_owned()))
                .collect(),
        );
    };
    let mut elements = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return elements.is_empty().then_some(elements);
        }
        let (element, quoted) = if chars.next_if_eq(&'"').is_some() {
            let mut e = String::new();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => e.push(chars.next()?),
                    c => e.push(c),
                }
            }
            (e, true)
        } else {
            let mut e = String::new();
            while let Some(c) = chars.next_if(|c| *c != ',') {
                match c {
                    '{' | '}' | '"' => return None,
                    '\\' => e.push(chars.next()?),
                    c => e.push(c),
                }
            }
            (e.trim_end().to_owned(), false)
        };
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let null = !quoted && element.eq_ignore_ascii_case("null");
        elements.push((!null).then_some(element));
        match chars.next() {
            None => return Some(elements),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// The array literal of `elements`, quoting those that need it as
/// PostgreSQL's output does.
pub fn format<'a>(elements: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut out = String::from("{");
    for (i, element) in elements.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match element {
            None => out.push_str("NULL"),
            Some(e) => push_element(&mut out, e),
        }
    }
    out.push('}');
    out
}

/// Appends `e` as an element of an array literal: bare unless empty,
/// `NULL`, or holding a delimiter, brace, quote, backslash or space.
pub fn push_element(out: &mut String, e: &str) {
    let bare = !e.is_empty()
        && !e.eq_ignore_ascii_case("null")
        && !e
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
    if bare {
        out.push_str(e);
        return;
    }
    out.push('"');
    for c in e.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_round_trip() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(parse("{}"), Some(vec![]));
        assert_eq!(parse("{a,b}"), Some(vec![some("a"), some("b")]));
        assert_eq!(
            parse(r#"{"a,b", NULL ,"NULL","x \"y\"",c\,d}"#),
            Some(vec![
                some("a,b"),
                None,
                some("NULL"),
                some("x \"y\""),
                some("c,d")
            ])
        );
        assert_eq!(parse("1 2"), Some(vec![some("1"), some("2")]));
        assert_eq!(parse("{{1},{2}}"), None);
        assert_eq!(parse("{\"a}"), None);
        assert_eq!(parse("{a,}"), None);
        let elements = [
            Some("a,b"),
            None,
            Some("NULL"),
            Some(""),
            Some("x\"\\"),
            Some("c"),
        ];
        let text = format(elements);
        assert_eq!(text, r#"{"a,b",NULL,"NULL","","x\"\\",c}"#);
        let back = parse(&text).unwrap();
        assert_eq!(
            back.iter().map(|e| e.as_deref()).collect::<Vec<_>>(),
            elements
        );
    }
}
