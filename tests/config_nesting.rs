//! Hostile config.toml nesting must be an error, not a stack overflow.

use raida_healing::config_file::parse;

/// A config file whose value nests arrays (or inline tables) far deeper than any real
/// config does must be refused with a line-numbered error. Unbounded recursion in the
/// reader overflows the stack instead, which kills the ops script that called
/// `raida_healing_open` (SIGSEGV, not a catchable panic).
#[test]
fn deeply_nested_values_are_refused_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{a=", "}")] {
        let depth = 200_000;
        let text = format!("x = {}1{}\n", open.repeat(depth), close.repeat(depth));
        let err = parse(&text).expect_err("a 200 000-deep value is not a config");
        assert_eq!(err.line, Some(1), "{err}");
        // the toml crate's own bound (its `unbounded` feature stays off)
        assert!(err.message.contains("max recursion depth"), "{err}");
        // Real nesting is accepted: the reader goes on to the keys it needs.
        let text = format!("x = {}1{}\n", open.repeat(64), close.repeat(64));
        let err = parse(&text).expect_err("no raida_id");
        assert_eq!(err.line, None, "{err}");
        assert!(err.message.starts_with("raida_id is missing"), "{err}");
    }
}
