//! Cheap checks that refuse hostile GraphQL documents before async-graphql
//! parses and validates them.
//!
//! async-graphql's parser recurses once per level of `{`, `[` and `(`, so a
//! document nested a few thousand levels deep overflows the stack and aborts
//! the process; its validator re-walks a fragment every time it is spread, so a
//! short chain of fragments that each spread the previous one twice costs
//! exponential time. Everything here runs in time linear in the document and
//! never recurses on the input, so it is safe to run on anything.

use std::collections::HashMap;
use std::fmt;

use async_graphql_parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql_parser::{Error as ParseError, Pos};

/// Limits applied to a GraphQL document before it is parsed and validated.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest accepted query text, in bytes. Default 100 000.
    pub max_bytes: usize,
    /// Deepest accepted nesting of `{`, `[` and `(` anywhere in the text.
    /// Default 64. The parser's stack use grows with this, so keep it small.
    pub max_nesting: usize,
    /// Most lexical tokens (names, numbers, strings, punctuators) accepted.
    /// Default 10 000.
    pub max_tokens: usize,
    /// Most field aliases accepted across the whole document. Default 30.
    pub max_aliases: usize,
    /// Most directive uses accepted across the whole document. Default 50.
    pub max_directives: usize,
    /// Most fields the operations may select once every fragment spread is
    /// expanded in place. Default 2 000.
    pub max_expanded_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 100_000,
            max_nesting: 64,
            max_tokens: 10_000,
            max_aliases: 30,
            max_directives: 50,
            max_expanded_fields: 2_000,
        }
    }
}

/// Why a document was refused. The message is short, meant for the client,
/// and never repeats the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Maps to API code `QUERY_TOO_COMPLEX`.
    TooComplex(String),
    /// Maps to API code `BAD_USER_INPUT` (syntax error, fragment cycle, empty document).
    Invalid(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooComplex(message) | Self::Invalid(message) => f.write_str(message),
        }
    }
}

/// Checks `query` against `limits` and returns the parsed document when it is safe to hand to async-graphql.
///
/// # Errors
///
/// [`Refusal::TooComplex`] when a limit is exceeded, [`Refusal::Invalid`] when
/// the document is empty, does not parse, or has a fragment cycle.
pub fn check(query: &str, limits: &Limits) -> Result<ExecutableDocument, Refusal> {
    if query.len() > limits.max_bytes {
        return Err(too_complex(format!(
            "document is longer than {} bytes",
            limits.max_bytes
        )));
    }
    // Must run before parsing: it is what bounds the parser's recursion.
    let tokens = prescan(query.as_bytes(), limits)?;
    if tokens == 0 {
        return Err(Refusal::Invalid("document is empty".into()));
    }
    let document = async_graphql_parser::parse_query(query).map_err(|e| parse_refusal(&e))?;
    let survey = Survey::of(&document);
    survey.check_counts(limits)?;
    let expanded = survey.expanded_operation_fields()?;
    if expanded > limits.max_expanded_fields {
        return Err(too_complex(format!(
            "document expands to more than {} fields",
            limits.max_expanded_fields
        )));
    }
    Ok(document)
}

fn too_complex(message: String) -> Refusal {
    Refusal::TooComplex(message)
}

// ---------------------------------------------------------------------------
// Lexical pre-scan
// ---------------------------------------------------------------------------

/// What one step of the pre-scan consumed.
enum Lexeme {
    /// Whitespace, commas, comments, UTF-8 continuation bytes.
    Trivia,
    Open,
    Close,
    Token,
}

/// Scans the raw text once, refusing it as soon as nesting or token count
/// goes over the limit; returns the token count.
fn prescan(bytes: &[u8], limits: &Limits) -> Result<usize, Refusal> {
    let mut depth = 0usize;
    let mut tokens = 0usize;
    let mut at = 0usize;
    while at < bytes.len() {
        let (lexeme, next) = next_lexeme(bytes, at)?;
        match lexeme {
            Lexeme::Trivia => {}
            Lexeme::Open => {
                depth += 1;
                tokens += 1;
                if depth > limits.max_nesting {
                    return Err(too_complex(format!(
                        "document nests deeper than {} levels",
                        limits.max_nesting
                    )));
                }
            }
            Lexeme::Close => {
                depth = depth.saturating_sub(1);
                tokens += 1;
            }
            Lexeme::Token => tokens += 1,
        }
        if tokens > limits.max_tokens {
            return Err(too_complex(format!(
                "document has more than {} tokens",
                limits.max_tokens
            )));
        }
        // Every arm consumes at least one byte, so the scan always advances.
        at = next.max(at + 1);
    }
    Ok(tokens)
}

/// Classifies the lexeme starting at `at` and returns where it ends.
///
/// The string and comment rules mirror the parser's grammar exactly, because a
/// bracket this scan believes is inside a string but the parser does not would
/// slip past the nesting limit.
fn next_lexeme(bytes: &[u8], at: usize) -> Result<(Lexeme, usize), Refusal> {
    let rest = bytes.get(at..).unwrap_or_default();
    let lexeme = match rest {
        [b'"', b'"', b'"', ..] => match skip_block_string(bytes, at + 3) {
            Some(end) => (Lexeme::Token, end),
            // The parser would backtrack and read `"""` as `""` followed by
            // another string, exposing text this scan skipped; refuse instead.
            None => return Err(Refusal::Invalid("unterminated block string".into())),
        },
        [b'"', ..] => (Lexeme::Token, skip_string(bytes, at + 1)),
        [b'#', ..] => (Lexeme::Trivia, skip_comment(bytes, at + 1)),
        [b'.', b'.', b'.', ..] => (Lexeme::Token, at + 3),
        [b'{' | b'[' | b'(', ..] => (Lexeme::Open, at + 1),
        [b'}' | b']' | b')', ..] => (Lexeme::Close, at + 1),
        [b' ' | b'\t' | b'\n' | b'\r' | b',', ..] => (Lexeme::Trivia, at + 1),
        [c, ..] if is_word_start(*c) => (Lexeme::Token, skip_word(bytes, at + 1)),
        // Count a multi-byte character once, by its lead byte.
        [c, ..] if (0x80..0xC0).contains(c) => (Lexeme::Trivia, at + 1),
        _ => (Lexeme::Token, at + 1),
    };
    Ok(lexeme)
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Names and numbers (including `1.5e-3`) are each counted as one token.
fn skip_word(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&c) = bytes.get(at) {
        if !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.')) {
            break;
        }
        at += 1;
    }
    at
}

/// Returns the index just past the closing `"""`, or `None` if there is none.
/// Only `\"""` is an escape inside a block string.
fn skip_block_string(bytes: &[u8], mut at: usize) -> Option<usize> {
    while at < bytes.len() {
        let rest = bytes.get(at..).unwrap_or_default();
        if rest.starts_with(b"\\\"\"\"") {
            at += 4;
        } else if rest.starts_with(b"\"\"\"") {
            return Some(at + 3);
        } else {
            at += 1;
        }
    }
    None
}

/// Returns the index just past the closing quote. A line break ends the
/// string early, as in the grammar, so the brackets after it are still seen.
fn skip_string(bytes: &[u8], mut at: usize) -> usize {
    loop {
        match bytes.get(at) {
            None | Some(b'\n' | b'\r') => return at,
            Some(b'"') => return at + 1,
            Some(b'\\') => match bytes.get(at + 1) {
                None | Some(b'\n' | b'\r') => at += 1,
                Some(_) => at += 2,
            },
            Some(_) => at += 1,
        }
    }
}

fn skip_comment(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&c) = bytes.get(at) {
        if c == b'\n' || c == b'\r' {
            break;
        }
        at += 1;
    }
    at
}

// ---------------------------------------------------------------------------
// Parse errors
// ---------------------------------------------------------------------------

/// Turns a parser error into a refusal. The parser's own syntax message quotes
/// the offending line, so only its position and expectation are kept.
fn parse_refusal(error: &ParseError) -> Refusal {
    let message = match error {
        ParseError::Syntax { message, start, .. } => syntax_message(message, *start),
        ParseError::MissingOperation => "document does not contain an operation".into(),
        ParseError::MultipleOperations { .. } => {
            "an anonymous operation must be the only operation in the document".into()
        }
        ParseError::OperationDuplicated { .. } => "an operation name is defined twice".into(),
        ParseError::FragmentDuplicated { .. } => "a fragment name is defined twice".into(),
        // Reachable only when max_nesting is raised above the parser's own cap.
        ParseError::RecursionLimitExceeded => {
            return too_complex("document nests too deeply".into());
        }
        _ => "document is not valid GraphQL".into(),
    };
    Refusal::Invalid(message)
}

fn syntax_message(pest_message: &str, start: Pos) -> String {
    // pest ends its message with a line such as "= expected selection_set",
    // naming grammar rules only.
    let expectation = pest_message
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("= "))
        .find(|text| text.starts_with("expected ") || text.starts_with("unexpected "));
    match expectation {
        Some(text) => format!(
            "syntax error at line {}, column {}: {text}",
            start.line, start.column
        ),
        None => format!(
            "syntax error at line {}, column {}",
            start.line, start.column
        ),
    }
}

// ---------------------------------------------------------------------------
// Document survey: counts and fragment expansion
// ---------------------------------------------------------------------------

/// What one operation or fragment selects, before spreads are expanded.
#[derive(Default)]
struct Shape<'a> {
    /// Fields at any depth, inline fragments included.
    fields: usize,
    /// Names of the fragments spread at any depth, once per spread.
    spreads: Vec<&'a str>,
}

/// Per-document facts gathered in a single iterative walk.
#[derive(Default)]
struct Survey<'a> {
    aliases: usize,
    directives: usize,
    operations: Vec<Shape<'a>>,
    fragments: HashMap<&'a str, Shape<'a>>,
}

impl<'a> Survey<'a> {
    fn of(document: &'a ExecutableDocument) -> Self {
        let mut survey = Self::default();
        for (_, operation) in document.operations.iter() {
            let operation = &operation.node;
            survey.add_directives(operation.directives.len());
            for variable in &operation.variable_definitions {
                survey.add_directives(variable.node.directives.len());
            }
            let shape = survey.walk(&operation.selection_set.node);
            survey.operations.push(shape);
        }
        for (name, fragment) in &document.fragments {
            survey.add_directives(fragment.node.directives.len());
            let shape = survey.walk(&fragment.node.selection_set.node);
            survey.fragments.insert(name.as_str(), shape);
        }
        survey
    }

    fn add_directives(&mut self, count: usize) {
        self.directives = self.directives.saturating_add(count);
    }

    /// Walks a selection set with an explicit stack rather than recursion, so
    /// stack use does not depend on the document.
    fn walk(&mut self, root: &'a SelectionSet) -> Shape<'a> {
        let mut shape = Shape::default();
        let mut pending = vec![root];
        while let Some(set) = pending.pop() {
            for item in &set.items {
                self.add_directives(item.node.directives().len());
                match &item.node {
                    Selection::Field(field) => {
                        shape.fields = shape.fields.saturating_add(1);
                        if field.node.alias.is_some() {
                            self.aliases = self.aliases.saturating_add(1);
                        }
                        pending.push(&field.node.selection_set.node);
                    }
                    Selection::FragmentSpread(spread) => {
                        shape.spreads.push(spread.node.fragment_name.node.as_str());
                    }
                    Selection::InlineFragment(inline) => {
                        pending.push(&inline.node.selection_set.node);
                    }
                }
            }
        }
        shape
    }

    fn check_counts(&self, limits: &Limits) -> Result<(), Refusal> {
        if self.aliases > limits.max_aliases {
            return Err(too_complex(format!(
                "document uses more than {} aliases",
                limits.max_aliases
            )));
        }
        if self.directives > limits.max_directives {
            return Err(too_complex(format!(
                "document uses more than {} directives",
                limits.max_directives
            )));
        }
        Ok(())
    }

    /// Total fields of all operations with every spread expanded in place.
    fn expanded_operation_fields(&self) -> Result<usize, Refusal> {
        let sizes = expand_fragments(&self.fragments)?;
        let total = self.operations.iter().fold(0usize, |total, shape| {
            total.saturating_add(expanded_size(shape, &sizes))
        });
        Ok(total)
    }
}

fn expanded_size(shape: &Shape<'_>, sizes: &HashMap<&str, usize>) -> usize {
    shape.spreads.iter().fold(shape.fields, |total, name| {
        // Unknown fragments count as nothing; the validator reports them.
        total.saturating_add(sizes.get(name).copied().unwrap_or(0))
    })
}

/// Expansion state of a fragment during the depth-first walk.
enum Mark {
    /// On the current path: meeting it again means a cycle.
    Open,
    Done(usize),
}

/// One fragment on the explicit depth-first stack.
struct Frame<'a> {
    name: &'a str,
    next_spread: usize,
    total: usize,
}

/// Expanded size of every fragment, each computed once, so a doubling chain
/// costs time linear in its length instead of exponential.
fn expand_fragments<'a>(
    shapes: &HashMap<&'a str, Shape<'a>>,
) -> Result<HashMap<&'a str, usize>, Refusal> {
    let mut marks: HashMap<&'a str, Mark> = HashMap::with_capacity(shapes.len());
    for (&name, shape) in shapes {
        if !marks.contains_key(name) {
            expand_from(name, shape, shapes, &mut marks)?;
        }
    }
    let sizes = marks.into_iter().filter_map(|(name, mark)| match mark {
        Mark::Done(size) => Some((name, size)),
        Mark::Open => None,
    });
    Ok(sizes.collect())
}

/// Iterative post-order walk from one fragment, filling in `marks`.
fn expand_from<'a>(
    root: &'a str,
    root_shape: &Shape<'a>,
    shapes: &HashMap<&'a str, Shape<'a>>,
    marks: &mut HashMap<&'a str, Mark>,
) -> Result<(), Refusal> {
    marks.insert(root, Mark::Open);
    let mut stack = vec![Frame {
        name: root,
        next_spread: 0,
        total: root_shape.fields,
    }];
    while let Some(top) = stack.last_mut() {
        let spreads = shapes.get(top.name).map_or(&[][..], |s| &s.spreads[..]);
        let Some(&child) = spreads.get(top.next_spread) else {
            if let Some(done) = stack.pop() {
                marks.insert(done.name, Mark::Done(done.total));
                if let Some(parent) = stack.last_mut() {
                    parent.total = parent.total.saturating_add(done.total);
                }
            }
            continue;
        };
        top.next_spread += 1;
        match (marks.get(child), shapes.get(child)) {
            (Some(Mark::Done(size)), _) => top.total = top.total.saturating_add(*size),
            (Some(Mark::Open), _) => {
                return Err(Refusal::Invalid(
                    "fragment cycle: a fragment spreads itself, directly or indirectly".into(),
                ));
            }
            (None, Some(shape)) => {
                marks.insert(child, Mark::Open);
                stack.push(Frame {
                    name: child,
                    next_spread: 0,
                    total: shape.fields,
                });
            }
            // Unknown fragment: counts as nothing; the validator reports it.
            (None, None) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn too_complex_message(query: &str, limits: &Limits) -> String {
        match check(query, limits) {
            Err(Refusal::TooComplex(message)) => message,
            other => panic!("expected TooComplex, got {other:?}"),
        }
    }

    fn invalid_message(query: &str, limits: &Limits) -> String {
        match check(query, limits) {
            Err(Refusal::Invalid(message)) => message,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn nested(open: &str, close: &str, depth: usize) -> String {
        format!("{}{}", open.repeat(depth), close.repeat(depth))
    }

    /// `fragment F0 on Query { a b }` then each `Fn` spreads `F(n-1)` twice.
    fn doubling_chain(levels: usize) -> String {
        let mut query = format!("query {{ ...F{levels} }}\nfragment F0 on Query {{ a b }}\n");
        for n in 1..=levels {
            let prev = n - 1;
            query.push_str(&format!(
                "fragment F{n} on Query {{ ...F{prev} ...F{prev} }}\n"
            ));
        }
        query
    }

    #[test]
    fn refuses_oversized_document() {
        let query = format!("{{ a }}{}", " ".repeat(100_000));
        let message = too_complex_message(&query, &Limits::default());
        assert_eq!(message, "document is longer than 100000 bytes");
    }

    #[test]
    fn refuses_argument_values_nested_ten_thousand_deep() {
        let lists = format!("query {{ f(a: {}) }}", nested("[", "]", 10_000));
        let message = too_complex_message(&lists, &Limits::default());
        assert_eq!(message, "document nests deeper than 64 levels");

        let objects = format!(
            "query {{ f(a: {}1{}) }}",
            "{a: ".repeat(10_000),
            "}".repeat(10_000)
        );
        too_complex_message(&objects, &Limits::default());
    }

    #[test]
    fn refuses_deep_selection_sets_and_list_types() {
        let selections = format!(
            "query {{ {} }}",
            "a { ".repeat(10_000) + &"}".repeat(10_000)
        );
        too_complex_message(&selections, &Limits::default());

        let types = format!(
            "query($v: {}Int{}) {{ a }}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        too_complex_message(&types, &Limits::default());
    }

    #[test]
    fn refuses_hundred_thousand_deep_nesting_when_byte_limit_is_raised() {
        let limits = Limits {
            max_bytes: usize::MAX,
            max_tokens: usize::MAX,
            ..Limits::default()
        };
        let query = format!("query {{ f(a: {}) }}", nested("[", "]", 100_000));
        too_complex_message(&query, &limits);
    }

    #[test]
    fn accepts_nesting_at_the_limit() {
        let limits = Limits {
            max_nesting: 5,
            ..Limits::default()
        };
        // `{` + `(` + three `[` = five levels.
        assert!(check("{ f(a: [[[1]]]) }", &limits).is_ok());
        too_complex_message("{ f(a: [[[[1]]]]) }", &limits);
    }

    #[test]
    fn closing_brackets_never_drive_depth_below_zero() {
        let limits = Limits {
            max_nesting: 3,
            ..Limits::default()
        };
        // Stray closers first must not bank credit for deeper nesting later.
        let query = format!("{} {{ f(a: [[1]]) }}", "]".repeat(10));
        too_complex_message(&query, &limits);
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let brackets = "[{(".repeat(1_000);
        let query = format!(
            "{{ f(a: \"{brackets} \\\" {brackets}\", b: \"\"\"{brackets} \\\"\"\" {brackets}\"\"\") }}"
        );
        assert!(check(&query, &Limits::default()).is_ok());
    }

    #[test]
    fn brackets_inside_comments_do_not_count() {
        let query = format!("# {}\n{{ a }}", "[".repeat(1_000));
        assert!(check(&query, &Limits::default()).is_ok());
    }

    #[test]
    fn brackets_after_an_unterminated_string_still_count() {
        let query = format!("{{ f(a: \"open\n{}) }}", nested("[", "]", 10_000));
        too_complex_message(&query, &Limits::default());
    }

    #[test]
    fn refuses_unterminated_block_string() {
        // The parser would read `"""` as `""` then `" "`, leaving the
        // brackets outside any string; the scan must not hide them.
        let query = format!("{{ f(a: [\"\"\" \" {}]) }}", nested("[", "]", 10_000));
        let message = invalid_message(&query, &Limits::default());
        assert_eq!(message, "unterminated block string");
    }

    #[test]
    fn refuses_too_many_tokens() {
        let query = format!("{{ {} }}", "a ".repeat(20_000));
        let message = too_complex_message(&query, &Limits::default());
        assert_eq!(message, "document has more than 10000 tokens");
    }

    #[test]
    fn refuses_empty_document() {
        for query in ["", "  \n\t, ", "# only a comment\n"] {
            assert_eq!(
                invalid_message(query, &Limits::default()),
                "document is empty"
            );
        }
    }

    #[test]
    fn syntax_error_is_invalid() {
        let message = invalid_message("query { a ", &Limits::default());
        assert!(message.starts_with("syntax error at line 1"), "{message}");
    }

    #[test]
    fn syntax_error_message_does_not_echo_the_document() {
        let query = "query {\n  secretFieldName(token: \"hunter2\" }";
        let message = invalid_message(query, &Limits::default());
        assert!(message.starts_with("syntax error at line 2"), "{message}");
        assert!(!message.contains("secretFieldName"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn duplicate_fragment_is_invalid_without_echoing_its_name() {
        let query = "{ ...Secret } fragment Secret on Q { a } fragment Secret on Q { b }";
        let message = invalid_message(query, &Limits::default());
        assert!(!message.contains("Secret"), "{message}");
    }

    #[test]
    fn refuses_too_many_aliases() {
        let fields: String = (0..31).map(|i| format!("a{i}: f ")).collect();
        let message = too_complex_message(&format!("{{ {fields} }}"), &Limits::default());
        assert_eq!(message, "document uses more than 30 aliases");
    }

    #[test]
    fn accepts_aliases_at_the_limit() {
        let fields: String = (0..30).map(|i| format!("a{i}: f ")).collect();
        assert!(check(&format!("{{ {fields} }}"), &Limits::default()).is_ok());
    }

    #[test]
    fn refuses_too_many_directives() {
        let fields = "f @skip(if: false) ".repeat(51);
        let message = too_complex_message(&format!("{{ {fields} }}"), &Limits::default());
        assert_eq!(message, "document uses more than 50 directives");
    }

    #[test]
    fn counts_directives_in_every_position() {
        // Operation, variable, field, spread, inline fragment, fragment: six.
        let query = "query Q($v: Int @d) @d { f @d ...A @d ... on Q @d { g } } \
                     fragment A on Q @d { h }";
        let six = Limits {
            max_directives: 6,
            ..Limits::default()
        };
        let five = Limits {
            max_directives: 5,
            ..Limits::default()
        };
        assert!(check(query, &six).is_ok());
        too_complex_message(query, &five);
    }

    #[test]
    fn refuses_fragment_cycle() {
        let query = "{ ...A } fragment A on Q { x ...B } fragment B on Q { y ...C } \
                     fragment C on Q { ...A }";
        let message = invalid_message(query, &Limits::default());
        assert!(message.starts_with("fragment cycle"), "{message}");
    }

    #[test]
    fn refuses_fragment_self_spread() {
        let message = invalid_message("{ ...A } fragment A on Q { a ...A }", &Limits::default());
        assert!(message.starts_with("fragment cycle"), "{message}");
    }

    #[test]
    fn refuses_cycle_among_unused_fragments() {
        let query = "{ a } fragment A on Q { ...B } fragment B on Q { ...A }";
        invalid_message(query, &Limits::default());
    }

    #[test]
    fn refuses_doubling_fragment_chain_cheaply() {
        // 2^31 fields if expanded naively; memoization makes this 31 steps.
        let message = too_complex_message(&doubling_chain(30), &Limits::default());
        assert_eq!(message, "document expands to more than 2000 fields");
    }

    #[test]
    fn saturates_on_a_doubling_chain_two_hundred_deep() {
        too_complex_message(&doubling_chain(200), &Limits::default());
    }

    #[test]
    fn refuses_too_many_expanded_fields() {
        let limits = Limits {
            max_expanded_fields: 3,
            ..Limits::default()
        };
        assert!(check("{ a b c }", &limits).is_ok());
        too_complex_message("{ a b c d }", &limits);
    }

    #[test]
    fn counts_inline_fragments_and_nested_fields_when_expanding() {
        // b + A(x, y, z) = 4 fields.
        let query = "{ ...A b } fragment A on Q { x { y ... on Q { z } } }";
        let four = Limits {
            max_expanded_fields: 4,
            ..Limits::default()
        };
        let three = Limits {
            max_expanded_fields: 3,
            ..Limits::default()
        };
        assert!(check(query, &four).is_ok());
        too_complex_message(query, &three);
    }

    #[test]
    fn walks_a_long_linear_fragment_chain_without_recursion() {
        let limits = Limits {
            max_bytes: usize::MAX,
            max_tokens: usize::MAX,
            ..Limits::default()
        };
        let mut query = String::from("{ ...F20000 } fragment F0 on Q { a }\n");
        for n in 1..=20_000 {
            query.push_str(&format!("fragment F{n} on Q {{ ...F{} }}\n", n - 1));
        }
        let document = check(&query, &limits).unwrap();
        assert_eq!(document.fragments.len(), 20_001);
    }

    #[test]
    fn unknown_fragment_counts_as_zero() {
        let limits = Limits {
            max_expanded_fields: 1,
            ..Limits::default()
        };
        assert!(check("{ a ...Missing }", &limits).is_ok());
    }

    #[test]
    fn accepts_ordinary_query_with_fragments() {
        let query = r#"
            # Fetch a user and friends.
            query Profile($id: ID!, $withFriends: Boolean = true) {
              me: user(id: $id) {
                ...UserFields
                friends(first: 10) @include(if: $withFriends) { ...UserFields }
              }
              admin: user(id: "root") { ...UserFields ... on Admin { level } }
            }
            fragment UserFields on User { id name avatar(size: [64, 128]) { url } }
            fragment Unused on User { id }
        "#;
        let document = check(query, &Limits::default()).unwrap();
        assert_eq!(document.operations.iter().count(), 1);
        assert_eq!(document.fragments.len(), 2);
    }

    #[test]
    fn accepts_several_named_operations() {
        let query = "query A { a } query B { ...F } mutation C { c } fragment F on Q { f }";
        let document = check(query, &Limits::default()).unwrap();
        assert_eq!(document.operations.iter().count(), 3);
    }

    #[test]
    fn expanded_fields_are_summed_over_operations() {
        let limits = Limits {
            max_expanded_fields: 3,
            ..Limits::default()
        };
        too_complex_message("query A { a b } query B { c d }", &limits);
    }
}
