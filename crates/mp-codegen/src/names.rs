//! Names: the schema's camelCase turned into the Rust identifiers the
//! generated code uses, and capnpc's own naming rules (which the generated
//! code must match exactly to call capnpc's generated types).

/// capnpc's `camel_to_snake_case`: `addOnLoop` → `add_on_loop`.
pub(crate) fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The snake case of the Rust names this generator chooses itself (trait,
/// client and struct members): unlike capnpc's rule, a run of capitals is
/// one word, so `getTransactionsByTxID` → `get_transactions_by_tx_id` and
/// `getHTTPServer` → `get_http_server`.
pub(crate) fn rust_snake(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `rpc_error` → `RpcError` (enum variants from snake-case names).
pub(crate) fn rust_snake_to_camel(s: &str) -> String {
    s.split('_')
        .filter(|w| !w.is_empty())
        .map(capitalize_first)
        .collect()
}

/// capnpc's `capitalize_first_letter`: `addOnLoop` → `AddOnLoop`.
pub(crate) fn capitalize_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// capnpc's keyword list for module and `Server` method names.
const CAPNPC_KEYWORDS: &[&str] = &[
    "abstract", "alignof", "as", "be", "become", "box", "break", "const", "continue", "crate",
    "do", "else", "enum", "extern", "false", "final", "fn", "for", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "offsetof", "once", "override", "priv", "proc",
    "pub", "pure", "ref", "return", "self", "sizeof", "static", "struct", "super", "trait", "true",
    "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// capnpc's `module_name`: snake case, with `_` appended to its keywords.
/// Used for interface modules and `Server` trait method names.
pub(crate) fn capnp_module_name(s: &str) -> String {
    let mut name = snake(s);
    if CAPNPC_KEYWORDS.contains(&name.as_str()) {
        name.push('_');
    }
    name
}

/// Rust's keywords (strict and reserved, all editions).
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// A Rust identifier for a value or method name: keywords get a trailing
/// `_` (like capnpc), since `self`/`crate`/`super` cannot be raw identifiers.
pub(crate) fn ident(snake: &str) -> String {
    if RUST_KEYWORDS.contains(&snake) {
        format!("{snake}_")
    } else {
        snake.to_string()
    }
}

/// The locals of generated method bodies (request and reply builders, the
/// connection, the implementation): a parameter named like one of them gets
/// a trailing `_`, as keywords do, so it cannot shadow them.
const GENERATED_LOCALS: &[&str] = &[
    "cap", "conn", "ctx", "imp", "outcome", "p", "params", "r", "req", "results", "setup",
];

/// [`ident`] for a method parameter, kept clear of [`GENERATED_LOCALS`].
pub(crate) fn param_ident(ident: String) -> String {
    if GENERATED_LOCALS.contains(&ident.as_str()) {
        format!("{ident}_")
    } else {
        ident
    }
}

/// A Rust type name from a schema name: the first letter capitalised.
pub(crate) fn type_name(s: &str) -> String {
    capitalize_first(s)
}

/// A Rust string literal holding `s`.
pub(crate) fn lit(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_capnpc() {
        assert_eq!(snake("addOnLoop"), "add_on_loop");
        assert_eq!(capitalize_first("addOnLoop"), "AddOnLoop");
        assert_eq!(capnp_module_name("CalcInit"), "calc_init");
        assert_eq!(capnp_module_name("type"), "type_");
        assert_eq!(ident("match"), "match_");
        assert_eq!(ident("async"), "async_");
        assert_eq!(ident("value"), "value");
        assert_eq!(snake("getTransactionsByTxID"), "get_transactions_by_tx_i_d");
    }

    #[test]
    fn own_names_keep_acronyms_whole() {
        assert_eq!(rust_snake("addOnLoop"), "add_on_loop");
        assert_eq!(
            rust_snake("getTransactionsByTxID"),
            "get_transactions_by_tx_id"
        );
        assert_eq!(rust_snake("getHTTPServer"), "get_http_server");
        assert_eq!(rust_snake("makeMiningOld2"), "make_mining_old2");
        assert_eq!(rust_snake("blockV2Hash"), "block_v2_hash");
        assert_eq!(rust_snake("URL"), "url");
    }
}
